/* text: placeholder until the text module lands (FNV-1a only). */
#ifndef CM_TEXT_H
#define CM_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* 64-bit FNV-1a of data[0..len). Cannot fail. */
uint64_t cm_fnv1a(const void *data, size_t len);

#endif

#include "text.h"

uint64_t cm_fnv1a(const void *data, size_t len)
{
        const unsigned char *p = data;
        uint64_t h = 14695981039346656037ULL;
        size_t i;

        for (i = 0; i < len; i++)
                h = (h ^ p[i]) * 1099511628211ULL;
        return h;
}

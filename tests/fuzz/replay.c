/*
 * replay: runs one fuzz target (linked in beside it) over the files of the
 * directories given, in name order: the committed seeds and the inputs
 * that once crashed it, so that `make unit` proves every fix still holds.
 *
 *   replay_<name> [-v] DIR...
 *
 * A directory that does not exist holds nothing (tests/fuzz/regressions/
 * <name>/ exists once a crash was found). Fails when there was no input at
 * all. A target that fails aborts; the file it was running is named on
 * stderr first (-v: every file).
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "util.h"

static char current[4096];

static void on_abort(int sig)
{
        static const char what[] = "replay: failed on ";

        if (write(STDERR_FILENO, what, sizeof(what) - 1) < 0 ||
            write(STDERR_FILENO, current, strlen(current)) < 0 ||
            write(STDERR_FILENO, "\n", 1) < 0)
                _exit(128 + sig);
        signal(sig, SIG_DFL);
        raise(sig);
}

/* Reads path into a heap buffer (never NULL). Returns 0, or -1. */
static int slurp(const char *path, uint8_t **out, size_t *len)
{
        FILE *fp = fopen(path, "rb");
        cm_buf_t b = CM_BUF_INIT;
        char chunk[65536];
        size_t n;
        int ret = -1;

        if (!fp)
                goto out;
        while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
                cm_buf_add(&b, chunk, n);
        if (ferror(fp))
                goto out;
        *out = (uint8_t *)cm_buf_detach(&b, len);
        ret = 0;
out:
        if (fp)
                fclose(fp);
        cm_buf_release(&b);
        return ret;
}

static int skip_entry(const struct dirent *de)
{
        return de->d_name[0] == '.';
}

/* Runs the target over the files of dir. Returns their number, or -1. */
static long replay_dir(const char *dir, int verbose)
{
        struct dirent **names = NULL;
        uint8_t *data;
        size_t len;
        long done = 0;
        int i, n;

        n = scandir(dir, &names, NULL, alphasort);
        if (n < 0)
                return errno == ENOENT ? 0 : -1;
        for (i = 0; i < n; i++) {
                if (done >= 0 && !skip_entry(names[i])) {
                        snprintf(current, sizeof(current), "%s/%s", dir,
                                 names[i]->d_name);
                        if (verbose)
                                fprintf(stderr, "replay: %s\n", current);
                        if (slurp(current, &data, &len) == -1) {
                                fprintf(stderr,
                                        "replay: cannot read '%s': %s\n",
                                        current, strerror(errno));
                                done = -1;
                        } else {
                                LLVMFuzzerTestOneInput(data, len);
                                free(data);
                                done++;
                        }
                }
                free(names[i]);
        }
        free(names);
        return done;
}

int main(int argc, char **argv)
{
        const char *name;
        long total = 0, n;
        int i, verbose = 0;

        signal(SIGABRT, on_abort);
        for (i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "-v")) {
                        verbose = 1;
                        continue;
                }
                n = replay_dir(argv[i], verbose);
                if (n < 0) {
                        fprintf(stderr, "replay: cannot read '%s'\n", argv[i]);
                        return 1;
                }
                total += n;
        }
        if (total == 0) {
                fprintf(stderr, "replay: no input in the directories given\n");
                return 1;
        }
        name = strrchr(argv[0], '/');
        printf("%s: %ld inputs passed\n", name ? name + 1 : argv[0], total);
        return 0;
}

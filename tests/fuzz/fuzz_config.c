/*
 * libFuzzer target: the INI configuration loader (common/core/config.c) through
 * its real entry point, hsc_config_load_file, on a memfd holding the input.
 * A file either loads or fails with a message naming the file and line; what
 * loads can be dumped both ways, every pass-through section walked, and every
 * declared key read back with the getter of its type, within its range.
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

static int count_prop(void *arg, const char *name, const char *value, hsc_err *err)
{
    (void)err;
    FUZZ_CHECK(name && value);
    ++*(int *)arg;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("hsc-fuzz-config", 0);
        FUZZ_CHECK(fd >= 0);
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    FUZZ_CHECK(ftruncate(fd, 0) == 0);
    FUZZ_CHECK(pwrite(fd, data, size, 0) == (ssize_t)size);

    hsc_config *cfg = hsc_config_new();
    FUZZ_CHECK(cfg);
    hsc_err err = {0};
    int rc = hsc_config_load_file(cfg, path, &err);
    if (rc) {
        FUZZ_CHECK(err.code == rc && !strncmp(err.msg, path, strlen(path)));
    } else {
        static const char *sections[] = {"rdkafka", "rdkafka.consumer", "rdkafka.producer"};
        int n = 0;
        for (size_t i = 0; i < 3; i++)
            FUZZ_CHECK(hsc_config_each_passthrough(cfg, sections[i], count_prop, &n, &err) == 0);
        FILE *devnull = fopen("/dev/null", "w");
        FUZZ_CHECK(devnull);
        hsc_config_dump(cfg, devnull);
        hsc_config_dump_origins(cfg, devnull);
        fclose(devnull);
        const struct hsc_config_key *k;
        for (size_t i = 0; (k = hsc_config_key_at(i)); i++) {
            if (k->type == HSC_CONFIG_INT) {
                long long v = hsc_config_int(cfg, k->name);
                FUZZ_CHECK(v >= k->min && v <= k->max);
            } else if (k->type == HSC_CONFIG_DOUBLE) {
                double v = hsc_config_double(cfg, k->name);
                FUZZ_CHECK(v >= (double)k->min && v <= (double)k->max);
            } else if (k->type == HSC_CONFIG_BOOL) {
                (void)hsc_config_bool(cfg, k->name);
            } else {
                FUZZ_CHECK(hsc_config_str(cfg, k->name) != NULL);
            }
        }
        (void)hsc_config_topic(cfg, "topics.content_events");
    }
    hsc_config_free(cfg);
    return 0;
}

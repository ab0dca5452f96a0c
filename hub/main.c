/* flushout-hub: parse the flags, run the hub; or `replay`, or --check-interceptors. */
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "hub/config.h"
#include "hub/hub.h"
#include "hub/replay.h"

int main(int argc, char **argv)
{
    fo_hub_config cfg;
    int rc;

    if (argc >= 2 && strcmp(argv[1], "replay") == 0)
        return fo_replay_main(argc - 1, argv + 1);
    if (argc >= 3 && strcmp(argv[1], "--check-interceptors") == 0) {
        /* --check-interceptors FILE [FLAGS]: FILE as the last --interceptors (it wins) */
        char *file = argv[2];
        memmove(argv + 1, argv + 3, (size_t)(argc - 3) * sizeof(*argv));
        argv[argc - 2] = (char *)"--interceptors";
        argv[argc - 1] = file;
        return fo_check_interceptors_main(argc, argv);
    }
    if (argc >= 2 && strncmp(argv[1], "--check-interceptors", 20) == 0) {
        fprintf(stderr, "usage: flushout-hub --check-interceptors FILE [FLAGS]\n");
        return 2;
    }
    /* Blocks of 128 KiB and more (snapshots, store rows on their way to disk, big frames
     * and reads) are mmapped and go back to the kernel when freed. glibc would otherwise
     * raise this threshold to the largest block freed so far and serve those transients
     * from the heap, where their pages stay after they are gone (bench/memory.sh: peak RSS
     * about 10 MB lower). Document arenas grow in 64 KiB chunks and stay in the heap. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    fo_hub_config_default(&cfg);
    rc = fo_hub_config_parse(&cfg, argc, argv);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    return fo_hub_run(&cfg);
}

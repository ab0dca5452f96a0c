/* example.c - the smallest app on libflushout-client, built from the installed files:
 *   cc example.c $(pkg-config --cflags --libs flushout-client) -o example
 *   ./example ws://127.0.0.1:7420/v1/ws MODEL
 * It subscribes to MODEL, applies one update once the first snapshot is there, waits for
 * the hub's ack and prints the document. tests (clients/c/install_test.sh) run it. */
#include <flushout/client.h>
#include <flushout/proto/json.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static int exit_code = 1;

static void on_change(fo_client_model *m, fo_client_change why, const fo_batch *d, void *data)
{
    const char *cmd = "{\"action\":\"update\",\"props\":{\"hello\":\"world\"}}";
    fo_client_result r;

    (void)d, (void)data;
    if (why == FO_CHANGE_SNAPSHOT && fo_client_count(m) == fo_client_committed_count(m))
        if (fo_client_apply_json(m, cmd, strlen(cmd), &r, NULL) != 0 || !r.ok)
            fo_client_close(fo_client_model_client(m), NULL, NULL);
}

static void on_flush(fo_client_model *m, const fo_client_flush_info *info, void *data)
{
    fo_buf b;

    (void)data;
    fo_buf_init(&b, 0);
    if (info->result && fo_json_write_value(fo_client_document(m), 0, &b) == 0) {
        printf("%.*s\n", (int)b.len, fo_buf_data(&b));
        exit_code = 0;
    }
    fo_buf_destroy(&b);
    fo_client_close(fo_client_model_client(m), NULL, NULL);
}

static void on_state(fo_client *c, fo_client_state s, const char *why, void *data)
{
    (void)data;
    if (s == FO_CLIENT_CLOSED) {
        fprintf(stderr, "example: %s\n", why);
        fo_client_close(c, NULL, NULL);
    }
}

int main(int argc, char **argv)
{
    uv_loop_t loop;
    fo_client *c;
    fo_client_model *m;
    fo_client_config cfg;
    int rc;

    if (argc != 3)
        return 2;
    signal(SIGPIPE, SIG_IGN); /* client.h: a libuv program that writes to sockets */
    uv_loop_init(&loop);
    fo_client_config_default(&cfg);
    cfg.url = argv[1];
    cfg.cb.on_change = on_change;
    cfg.cb.on_flush = on_flush;
    cfg.cb.on_state = on_state;
    if ((rc = fo_client_new(&loop, &cfg, &c)) != 0) {
        const char *why = fo_client_config_error(&cfg);
        fprintf(stderr, "example: %s\n", why ? why : fo_strerror(rc));
        uv_loop_close(&loop);
        return 2;
    }
    if (fo_client_subscribe(c, argv[2], &m) != 0)
        return 2;
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0 ? exit_code : 1;
}

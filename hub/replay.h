/* replay.h - `flushout-hub replay MODEL --interceptors FILE [--data DIR]`, its settings read
 * as the hub reads them (flags, FLUSHOUT_*, --config): re-runs a model's stored batches, as they were flushed, through a rules file, offline, with each batch's
 * stored `now` and identity, and prints every command the file's rules decide differently
 * from what the stored audit says (accepted, rejected with a message, rewritten to props):
 *
 *   {"from":N,"index":I,"command":{...},"stored":{"outcome":...},"replay":{"outcome":...}}
 *
 * one JSON line each on stdout, and a summary on stderr. Each batch is decided against the
 * document as the stored history left it (what happened), so one difference does not
 * cascade into the batches after it. Exit 0: no difference; 1: some; 2: usage, a bad rules
 * file, or a store that cannot be read (a data dir in use by a running hub is refused:
 * replay a copy of it).
 *
 * Also `flushout-hub --check-interceptors FILE [FLAGS]` (fo_check_interceptors_main: argv
 * as the hub's, with FILE as the last --interceptors; the rule limits from the settings). */
#ifndef FO_REPLAY_H
#define FO_REPLAY_H

/* argv[0] is "replay". Returns the exit code. */
int fo_replay_main(int argc, char **argv);
/* Loads FILE as the hub would: prints `FILE: N rules` (exit 0) or the error (exit 2). */
int fo_check_interceptors_main(int argc, char **argv);

#endif

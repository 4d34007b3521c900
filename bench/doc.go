// Package bench measures followupd against the limits of the machine and
// the mail server it runs with (issue 7). Everything lives in its test
// files: Go benchmarks that start the private Dovecot + Postfix of
// internal/mailtest, seed them by writing Maildir files directly, measure a
// figure of followupd and, in the same run, the same figure for a bare
// go-imap client (the limit), and append one row per figure to the file
// named by BENCH_OUT. bench/run runs them all and writes bench/RESULTS.md.
//
// Without BENCH_FULL=1 (CI runs every benchmark once with -benchtime=1x)
// each benchmark runs its whole path at a small scale in a few seconds and
// reports nothing to BENCH_OUT; bench/run sets BENCH_FULL=1. Sizes and the
// idle time of the 1,000-account test are in scale (helpers_test.go).
package bench

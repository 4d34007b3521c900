package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"syscall"
	"time"

	"followupd/backtest"
	"followupd/config"
)

const backtestUsage = `usage: followupd backtest -config FILE [-since 90d] [-json] [-v]

Replays the mailboxes' history (read-only: EXAMINE, nothing written) through
the daemon's own rules, calendar and send window, and reports what would have
been tracked and sent, and how many threads were answered anyway.
`

// cmdBacktest is `followupd backtest`.
func cmdBacktest(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("backtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, backtestUsage); fs.PrintDefaults() }
	path := fs.String("config", "/etc/followupd/followupd.toml", "configuration file")
	since := fs.String("since", "90d", "history to replay: 90d, 12w, 720h or a date (2026-01-15)")
	asJSON := fs.Bool("json", false, "one JSON object per line (tracked, reminder, skipped)")
	verbose := fs.Bool("v", false, "list every tracked thread's timeline")
	logLevel := fs.String("log-level", "warn", "log level of the replayed decisions (info shows every one)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	logger, err := newLogger(stderr, "text", *logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "followupd:", err)
		return 2
	}
	now := time.Now()
	start, err := backtest.ParseSince(*since, now, cfg.Location(nil))
	if err != nil {
		fmt.Fprintln(stderr, "followupd backtest:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := backtest.Run(ctx, cfg, backtest.Options{Since: start, Until: now, Logger: logger.With("pkg", "backtest")})
	if err != nil {
		fmt.Fprintln(stderr, "followupd backtest:", err)
		return 1
	}
	if *asJSON {
		err = res.WriteJSON(stdout)
	} else {
		err = res.WriteText(stdout, *verbose)
	}
	if err != nil {
		fmt.Fprintln(stderr, "followupd backtest:", err)
		return 1
	}
	return 0
}

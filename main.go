// Command followupd makes sure no commercial offer or invoice a sales team
// sends is forgotten: it watches the team's mailboxes over IMAP, tracks the
// offers and invoices they send, and when one stays unanswered past its
// rule's delay sends a polite reminder in the same thread.
//
// Usage:
//
//	followupd run -config FILE      the daemon (default when started by systemd)
//	followupd check -config FILE    validate config, rules and templates
//	followupd demo                  a self-contained demonstration (in-process IMAP and SMTP)
//	followupd explain [-config FILE] [-json] MESSAGE.eml...
//	followupd backtest -config FILE [-since 90d] [-json]   replay history read-only
//	followupd version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"

	// The one package-level side effect we accept: go-message decodes every
	// charset real mail uses (windows-1251, koi8-r, ...) once this is imported.
	_ "github.com/emersion/go-message/charset"

	"followupd/config"
	"followupd/control"
	"followupd/daemon"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: followupd <command> [flags]

commands:
  run -config FILE       run the daemon
  check -config FILE     validate the configuration, rules and templates
  demo                   run a self-contained demonstration (no setup, no network)
  explain [-config FILE] [-json] MESSAGE.eml...
                         show how messages would be classified, and why
  backtest -config FILE [-since 90d] [-json] [-v]
                         replay the mailboxes' history (read-only) and report
                         what would have been tracked and sent
  summary -config FILE -print [-html] [-account NAME|-team] | -now
                         write the daily summary to stdout, or send it now
  version                print the version

control (talks to the running daemon over its Unix socket):
` + control.Usage

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		// systemd starts the daemon without a command.
		if os.Getenv("NOTIFY_SOCKET") != "" || os.Getenv("INVOCATION_ID") != "" {
			args = []string{"run"}
		} else {
			fmt.Fprint(stderr, usage)
			return 2
		}
	}
	switch args[0] {
	case "run":
		return cmdRun(args[1:], stderr)
	case "check":
		return cmdCheck(args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(args[1:], stdout, stderr)
	case "backtest":
		return cmdBacktest(args[1:], stdout, stderr)
	case "explain":
		return cmdExplain(args[1:], stdout, stderr)
	case "summary":
		return cmdSummary(args[1:], stdout, stderr)
	case "status", "list", "show", "cancel", "snooze", "approve", "resolve", "backup":
		return cmdCtl(args[0], args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "followupd", versionString())
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "followupd: unknown command %q\n\n%s", args[0], usage)
	return 2
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", ""
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "+dirty"
				}
			}
		}
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev != "" {
			return "dev-" + rev + dirty
		}
	}
	return "dev"
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if level == "" {
		level = "info"
	}
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: want text or json", format)
}

func cmdRun(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "/etc/followupd/followupd.toml", "configuration file")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	sigs, stopSignals := serviceSignals() // first: SIGHUP's default would kill us
	defer stopSignals()
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	level := new(slog.LevelVar)
	logger, err := newServiceLogger(stderr, *logFormat, cfg.LogLevel, level)
	if err != nil {
		fmt.Fprintln(stderr, "followupd:", err)
		return 2
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	d, err := daemon.New(cfg, serviceOptions(daemon.Options{Logger: logger, Version: versionString()}, level))
	if err != nil {
		logger.Error("starting", "err", err)
		return 1
	}
	defer func() {
		if err := d.Close(); err != nil {
			logger.Error("closing store", "err", err)
		}
	}()
	done := make(chan struct{})
	defer close(done)
	go handleSignals(done, sigs, d, *path, logger, stop, os.Exit)
	logger.Info("followupd starting", "version", versionString(), "config", cfg.File, "accounts", len(cfg.Accounts), "rules", len(cfg.Rules))
	err = d.Run(ctx) // tells systemd READY=1, STATUS=, WATCHDOG=1, STOPPING=1 (daemon/notify.go)
	if err != nil && !errors.Is(err, context.Canceled) {
		logger.Error("daemon stopped", "err", err)
		return 1
	}
	logger.Info("followupd stopped")
	return 0
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "/etc/followupd/followupd.toml", "configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: OK\n", cfg.File)
	cfg.Summary(stdout)
	return 0
}

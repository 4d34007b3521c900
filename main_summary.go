package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"followupd/config"
	"followupd/control"
	"followupd/daemon"
	"followupd/store"
)

const summaryUsage = `usage: followupd summary -config FILE (-print [-html] [-account NAME|-team] | -now)

  -print   write the day's summaries to stdout (text; -html: the HTML of one)
  -now     send them now through each account's SMTP, as at [summary] time

While the daemon runs it holds the store; the summary then reads a hot copy
fetched over its control socket.
`

// cmdSummary renders (-print) or sends (-now) the daily summaries.
func cmdSummary(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("summary", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, summaryUsage) }
	path := fs.String("config", control.DefaultConfig, "configuration file")
	now := fs.Bool("now", false, "send the summaries now")
	print := fs.Bool("print", false, "write the summaries to stdout")
	html := fs.Bool("html", false, "with -print: write the HTML instead of the text")
	account := fs.String("account", "", "with -print: only this account's own summary")
	team := fs.Bool("team", false, "with -print: only the team summary")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *now == *print || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	db, cleanup, err := openStoreForSummary(cfg)
	if err != nil {
		fmt.Fprintln(stderr, "followupd summary:", err)
		return 1
	}
	defer cleanup()

	if *now {
		logger := slog.New(slog.NewTextHandler(stderr, nil))
		d, err := daemon.New(cfg, daemon.Options{Logger: logger, DB: db})
		if err != nil {
			fmt.Fprintln(stderr, "followupd summary:", err)
			return 1
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if err := d.SendSummaries(ctx); err != nil {
			fmt.Fprintln(stderr, "followupd summary:", err)
			return 1
		}
		return 0
	}
	mails, err := daemon.Summaries(cfg, db, time.Now(), daemon.LastSummary(db))
	if err != nil {
		fmt.Fprintln(stderr, "followupd summary:", err)
		return 1
	}
	var picked []daemon.SummaryMail
	for _, m := range mails {
		if (*team && m.Team) || (*account != "" && !m.Team && m.Account == *account) || (!*team && *account == "") {
			picked = append(picked, m)
		}
	}
	if len(picked) == 0 {
		fmt.Fprintln(stderr, "followupd summary: no such summary (is [summary] leads set for -team? is the account name right?)")
		return 1
	}
	if *html {
		// One document: the team's when there is one, else the first.
		m := picked[0]
		for _, p := range picked {
			if p.Team {
				m = p
			}
		}
		fmt.Fprint(stdout, m.HTML)
		return 0
	}
	for i, m := range picked {
		if i > 0 {
			fmt.Fprintln(stdout, "\n========================================================================")
		}
		fmt.Fprintf(stdout, "To: %s\nSubject: %s\n\n%s", summaryTo(m), m.Subject, m.Text)
	}
	return 0
}

func summaryTo(m daemon.SummaryMail) string {
	s := ""
	for i, a := range m.To {
		if i > 0 {
			s += ", "
		}
		s += a.Addr
	}
	return s
}

// openStoreForSummary opens the store read-only, or, when the running
// daemon holds it, a hot copy fetched over the control socket.
func openStoreForSummary(cfg *config.Config) (*store.DB, func(), error) {
	path := filepath.Join(cfg.StateDir, daemon.DBFile)
	db, err := store.Open(path, store.Options{ReadOnly: true, Timeout: 500 * time.Millisecond})
	if err == nil {
		return db, func() { _ = db.Close() }, nil
	}
	if !errors.Is(err, store.ErrLocked) {
		return nil, nil, err
	}
	sock := cfg.ControlSocket
	if sock == "" {
		sock = config.DefaultControlSocket(cfg.StateDir)
	}
	dir, err := os.MkdirTemp("", "followupd-summary-")
	if err != nil {
		return nil, nil, err
	}
	rm := func() { _ = os.RemoveAll(dir) }
	f, err := os.OpenFile(filepath.Join(dir, daemon.DBFile), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		rm()
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err = control.NewClient(sock).Backup(ctx, f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		rm()
		return nil, nil, fmt.Errorf("the daemon holds %s and its copy could not be fetched over %s: %w", path, sock, err)
	}
	db, err = store.Open(f.Name(), store.Options{ReadOnly: true})
	if err != nil {
		rm()
		return nil, nil, err
	}
	return db, func() { _ = db.Close(); rm() }, nil
}

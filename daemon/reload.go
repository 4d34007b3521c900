package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"followupd/calendar"
	"followupd/classify"
	"followupd/config"
	"followupd/imapwatch"
	"followupd/message"
	"followupd/send"
)

// Reloading (SIGHUP) swaps the configuration under a running daemon.
//
// The configuration-derived fields of Daemon (cfg, cls, accounts, byAddr)
// are never written after New. The live values sit in live, and every entry
// point (a watcher's batch, a scheduler fire, a sender's step) starts with
// d = d.current(): a shallow copy of the Daemon carrying the live values of
// that moment. One decision therefore sees one configuration from start to
// end, and code inside the decision keeps reading d.cfg, d.cls and
// d.accounts without locks. A goroutine that calls into the daemon without
// current() sees the configuration the daemon started with.
//
// What a reload keeps and what it restarts:
//   - An account whose IMAP identity (name, address, username, IMAP
//     server, folders, password) is unchanged keeps its imapwatch.Watcher and
//     its connections; the others are stopped, and new ones started.
//   - Every account gets a fresh runtime (calendar, SMTP submitter) and its
//     sender goroutine restarts: the old one is told to stop between steps,
//     so an in-flight send finishes under the configuration it started
//     with. The due queue and, when max_per_hour is unchanged, the pacer
//     carry over.
//   - Removed accounts stop; their follow-ups stay in the store.
//   - state_dir cannot change under a running daemon (it holds the open
//     store): a changed state_dir is logged and ignored until restart.

// live holds the current configuration and the running goroutines; one
// per Daemon, shared by every view current() makes.
type live struct {
	mu       sync.RWMutex // guards cfg, cls, accounts, byAddr, changed
	cfg      *config.Config
	cls      *classify.Classifier
	accounts map[string]*account
	byAddr   map[string]*account
	changed  chan struct{} // closed and replaced by every reload

	reloadMu sync.Mutex // serialises Reload with Run's start and stop; guards the fields below
	running  bool
	stopped  bool
	watchCtx context.Context
	sendCtx  context.Context
	watchers sync.WaitGroup // watcher goroutines and their first-sync recovery
	senders  sync.WaitGroup // sender goroutines

	lastSend time.Time // guarded by statusMu
	reloads  int
	statusMu sync.Mutex
}

// current returns a view of d carrying the live configuration; see the
// comment at the top of this file.
func (d *Daemon) current() *Daemon {
	v := *d
	d.live.mu.RLock()
	v.cfg, v.cls, v.accounts, v.byAddr = d.live.cfg, d.live.cls, d.live.accounts, d.live.byAddr
	d.live.mu.RUnlock()
	return &v
}

// Config is the configuration in effect (the last one Reload accepted).
func (d *Daemon) Config() *config.Config {
	d.live.mu.RLock()
	defer d.live.mu.RUnlock()
	return d.live.cfg
}

// needsBody asks the current classifier (the watcher keeps its function
// across reloads).
func (d *Daemon) needsBody(rec *message.Record) bool {
	d.live.mu.RLock()
	cls := d.live.cls
	d.live.mu.RUnlock()
	if isHistory(rec, d.historyBefore()) {
		return false // not classified at all (horizon.go)
	}
	return cls.NeedsBody(rec)
}

// configCalendar builds the business-day calendar of account a (nil: the
// top-level settings) from cfg: its effective zone and country, and the
// shared holidays and workdays. One function for the account's reminders
// and for the daily summaries (summary.go), so both count the same days.
func configCalendar(cfg *config.Config, a *config.Account, w calendar.Window) (*calendar.Calendar, error) {
	var holidays, workdays []calendar.Day
	for _, h := range cfg.Holidays {
		holidays = append(holidays, calendar.Day{Year: h.Year, Month: h.Month, Day: h.Day})
	}
	for _, d := range cfg.Workdays {
		workdays = append(workdays, calendar.Day{Year: d.Year, Month: d.Month, Day: d.Day})
	}
	return calendar.New(cfg.Location(a), cfg.CalendarCode(a), holidays, workdays, w)
}

// buildAccounts sets up every account of cfg: password, calendar, SMTP
// submitter, pacer. Nothing connects.
func (d *Daemon) buildAccounts(cfg *config.Config) (map[string]*account, map[string]*account, error) {
	accounts := make(map[string]*account, len(cfg.Accounts))
	byAddr := make(map[string]*account, len(cfg.Accounts))
	for i := range cfg.Accounts {
		ac := &cfg.Accounts[i]
		pw, err := ac.Password()
		if err != nil {
			return nil, nil, err
		}
		win := cfg.Window(ac)
		cal, err := configCalendar(cfg, ac, calendar.Window{Start: int(win.Start), End: int(win.End)})
		if err != nil {
			return nil, nil, fmt.Errorf("account %s: calendar: %w", ac.Name, err)
		}
		sub, err := send.NewSubmitter(ac, pw, send.Options{Logger: d.log})
		if err != nil {
			return nil, nil, fmt.Errorf("account %s: %w", ac.Name, err)
		}
		a := &account{
			cfg:      ac,
			password: pw,
			cal:      cal,
			sub:      sub,
			pacer:    send.NewPacer(ac.MaxPerHour, d.clk, int64(i)+time.Now().UnixNano()),
			queue:    make(chan uint64, 1024),
			synced:   make(chan struct{}),
			reserved: make(map[uint64]time.Time),
			inbox:    ac.Folders.Inbox,
			sent:     ac.Folders.Sent,
			drafts:   ac.Folders.Drafts,
		}
		// The watcher is created here (it does nothing until Run) so it is
		// in place before the account is published; a reload may replace
		// it with the old account's watcher.
		a.watcher = imapwatch.New(ac, pw, &sink{d: d, name: ac.Name}, imapwatch.Options{
			Clock:       d.clk,
			Logger:      d.log,
			NeedBody:    d.needsBody,
			Shallow:     d.shallowOK,
			Light:       d.lightOK,
			DebugWriter: d.opt.IMAPDebug,
			MinBackoff:  d.opt.ReconnectMin,
			MaxBackoff:  d.opt.ReconnectMax,
			DialLimiter: d.dial,
		})
		accounts[ac.Name] = a
		byAddr[strings.ToLower(ac.Address)] = a
	}
	return accounts, byAddr, nil
}

// sameWatch reports whether n can keep o's watcher: everything imapwatch
// reads from the account is unchanged.
func sameWatch(o, n *account) bool {
	oc, nc := o.cfg, n.cfg
	return oc.Name == nc.Name &&
		strings.EqualFold(oc.Address, nc.Address) &&
		oc.Username == nc.Username &&
		oc.IMAP == nc.IMAP &&
		oc.Folders == nc.Folders &&
		o.password == n.password
}

// Reload applies cfg, a configuration config.Load accepted, to the running
// daemon (see the comment at the top of this file). It returns an error,
// and changes nothing, when an account cannot be set up (a password that
// cannot be read, an unknown calendar) or the rules do not compile. New
// rules, templates and classifier settings apply to decisions that start
// after Reload returns.
func (d *Daemon) Reload(cfg *config.Config) error {
	l := d.live
	l.reloadMu.Lock()
	defer l.reloadMu.Unlock()
	if l.stopped {
		return errors.New("daemon: reload after shutdown")
	}
	old := d.current()
	if cfg.StateDir != old.cfg.StateDir {
		d.log.Warn("state_dir changed; it takes effect at the next restart", "old", old.cfg.StateDir, "new", cfg.StateDir)
	}
	cls, err := classify.New(cfg)
	if err != nil {
		return fmt.Errorf("compiling rules: %w", err)
	}
	accounts, byAddr, err := d.buildAccounts(cfg)
	if err != nil {
		return err
	}

	carried := map[string]bool{}
	var kept, restarted, added, removed []string
	for name, na := range accounts {
		oa := old.accounts[name]
		if oa == nil {
			added = append(added, name)
			continue
		}
		na.queue = oa.queue // due ids fire() already routed stay queued
		if sameWatch(oa, na) {
			carried[name] = true
			kept = append(kept, name)
		} else {
			restarted = append(restarted, name)
		}
	}
	for name := range old.accounts {
		if accounts[name] == nil {
			removed = append(removed, name)
		}
	}

	if l.running {
		// Old senders stop between steps: an in-flight step finishes
		// under the configuration it started with.
		for _, oa := range old.accounts {
			close(oa.quit)
		}
		for _, oa := range old.accounts {
			<-oa.senderDone
		}
		for name, oa := range old.accounts {
			if !carried[name] {
				oa.stopWatch()
				<-oa.watchDone
			}
		}
	}
	for name := range carried {
		oa, na := old.accounts[name], accounts[name]
		na.watcher, na.synced, na.stopWatch, na.watchDone = oa.watcher, oa.synced, oa.stopWatch, oa.watchDone
		oa.mu.Lock()
		na.inbox, na.sent, na.drafts = oa.inbox, oa.sent, oa.drafts
		oa.mu.Unlock()
	}
	for name, na := range accounts {
		// The old sender has stopped, so its pacing state can move.
		if oa := old.accounts[name]; oa != nil && oa.cfg.MaxPerHour == na.cfg.MaxPerHour {
			na.pacer, na.reserved = oa.pacer, oa.reserved
		}
	}

	l.mu.Lock()
	l.cfg, l.cls, l.accounts, l.byAddr = cfg, cls, accounts, byAddr
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()

	if l.running {
		for name, na := range accounts {
			if !carried[name] {
				d.startWatcher(na)
			}
			d.startSender(na)
		}
		if len(added) > 0 {
			// Follow-ups of an account configured again are back in the
			// wheel (fire dropped them while it was gone).
			if err := d.rebuildWheel(); err != nil {
				d.log.Error("reloading: rebuilding schedule", "err", err)
			}
		}
	}
	if d.opt.LogLevel != nil {
		var lv slog.Level
		if err := lv.UnmarshalText([]byte(cfg.LogLevel)); err == nil {
			d.opt.LogLevel.Set(lv)
		}
	}
	l.statusMu.Lock()
	l.reloads++
	l.statusMu.Unlock()
	d.log.Info("configuration reloaded", "config", cfg.File, "rules", len(cfg.Rules), "templates", len(cfg.Templates),
		"kept", strings.Join(sorted(kept), ","), "restarted", strings.Join(sorted(restarted), ","),
		"added", strings.Join(sorted(added), ","), "removed", strings.Join(sorted(removed), ","))
	return nil
}

// ReloadFile is what SIGHUP does: tell systemd RELOADING=1, load path
// again, and either log every problem of a broken file (the running
// configuration stays) or apply it with Reload; then READY=1 with a status.
func (d *Daemon) ReloadFile(path string) error {
	d.notify("RELOADING=1", monotonicUsec())
	defer func() { d.notify("READY=1", "STATUS="+d.Status()) }()
	d.log.Info("reloading configuration", "config", path)
	cfg, err := config.Load(path)
	if err != nil {
		var ce *config.Errors
		if errors.As(err, &ce) {
			for _, p := range ce.Problems {
				d.log.Error("config problem", "problem", p.String())
			}
		} else {
			d.log.Error("reading config", "err", err)
		}
		d.log.Error("new configuration rejected; the running one stays", "config", path)
		return err
	}
	if err := d.Reload(cfg); err != nil {
		d.log.Error("new configuration rejected; the running one stays", "config", path, "err", err)
		return err
	}
	return nil
}

// startWatcher runs a's watcher and, once it finished its first sync,
// settles a's steps left in sending, then closes a.synced. Called with
// live.reloadMu held while running.
func (d *Daemon) startWatcher(a *account) {
	l := d.live
	ctx, cancel := context.WithCancel(l.watchCtx)
	name := a.cfg.Name
	a.stopWatch = cancel
	a.watchDone = make(chan struct{})
	w, synced, done := a.watcher, a.synced, a.watchDone
	l.watchers.Add(2)
	go func() {
		defer l.watchers.Done()
		defer close(done)
		if err := w.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			d.log.Error("watcher stopped", "account", name, "err", err)
		}
	}()
	go func() {
		defer l.watchers.Done()
		select {
		case <-w.Ready():
			cur := d.current()
			if ca := cur.accounts[name]; ca != nil {
				cur.recoverInFlight(ctx, ca)
			}
			close(synced)
		case <-ctx.Done():
		}
	}()
}

// startSender starts a's sender goroutine. Called with live.reloadMu held
// while running.
func (d *Daemon) startSender(a *account) {
	l := d.live
	a.quit = make(chan struct{})
	a.senderDone = make(chan struct{})
	done := a.senderDone
	l.senders.Add(1)
	go func() {
		defer l.senders.Done()
		defer close(done)
		d.senderLoop(l.sendCtx, a)
	}()
}

// waitReady closes d.ready (and tells systemd READY=1) once every account
// configured at that moment finished its first sync; a reload meanwhile
// restarts the wait with the new accounts.
func (d *Daemon) waitReady(ctx context.Context) {
	for {
		d.live.mu.RLock()
		accounts, changed := d.live.accounts, d.live.changed
		d.live.mu.RUnlock()
		all := true
		for _, a := range accounts {
			select {
			case <-a.synced:
				continue
			case <-changed:
			case <-ctx.Done():
				return
			}
			all = false
			break
		}
		if all {
			d.log.Info("all accounts synced", "accounts", len(accounts), "pending", d.sched.Len())
			close(d.ready)
			d.notify("READY=1", "STATUS="+d.Status())
			return
		}
	}
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}

package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"followupd/calendar"
	"followupd/classify"
	"followupd/clock"
	"followupd/config"
	"followupd/imapwatch"
	"followupd/schedule"
	"followupd/send"
	"followupd/store"
)

// Options are the daemon's dependencies; zero values mean production defaults.
type Options struct {
	Clock  clock.Clock
	Logger *slog.Logger
	// OnEvent, when set, is told of every decision (the demo prints a
	// timeline from it; tests wait on it). It must not block for long.
	OnEvent func(Event)
	// IMAPDebug receives IMAP protocol traces (trace level only).
	IMAPDebug io.Writer
	// RetryBase is the first retry delay after a temporary SMTP failure;
	// doubled per attempt up to RetryMax. Defaults 1m and 1h.
	RetryBase, RetryMax time.Duration
	// MaxAttempts bounds temporary failures of one step before it is
	// marked failed. Default 24.
	MaxAttempts int
	// ReplyWait is how long a send waits for the watcher when the server
	// holds an unprocessed message citing the thread. Default 5s.
	ReplyWait time.Duration
	// ReconnectMin/Max bound the IMAP reconnect backoff (defaults in imapwatch).
	ReconnectMin, ReconnectMax time.Duration
	// DB, when set, is used instead of opening cfg.StateDir/followupd.db.
	DB *store.DB
	// Replay runs the decisions without side effects, for a Replayer
	// (`followupd backtest`): every step is recorded as in dry-run mode and
	// the server is not asked for unprocessed replies, since a replay has
	// applied every message up to its clock's now.
	Replay bool
}

// Event is one decision, for timelines and tests.
type Event struct {
	At        time.Time
	Account   string
	FollowUp  uint64
	MessageID string
	Kind      string // tracked, answered, autoreply, bounced, manual, stopped, sent, skipped, failed, retry, uncertain, held, drafted, finished
	Step      int
	Text      string
}

// Daemon is one running followupd.
type Daemon struct {
	cfg   *config.Config
	db    *store.DB
	ownDB bool
	cls   *classify.Classifier
	sched *schedule.Scheduler
	clk   clock.Clock
	log   *slog.Logger
	opt   Options

	accounts map[string]*account // by account name; immutable after New
	byAddr   map[string]*account // by lower-case address; immutable after New

	ready chan struct{}
}

// account is the runtime of one configured mailbox.
type account struct {
	cfg      *config.Account
	password string
	cal      *calendar.Calendar
	watcher  *imapwatch.Watcher
	sub      *send.Submitter
	pacer    *send.Pacer
	queue    chan uint64 // due follow-ups for this account's sender goroutine
	synced   chan struct{}

	mu       sync.Mutex
	reserved map[uint64]time.Time // pacing slots handed out, by follow-up (owned by the sender goroutine and fire)
	inbox    string               // discovered INBOX name (sender goroutine)
	sent     string               // discovered Sent name
	drafts   string
}

// DBFile is the store's file name inside state_dir.
const DBFile = "followupd.db"

// New checks that every account can be set up (passwords, calendars,
// submitters) and opens the store. Nothing connects yet.
func New(cfg *config.Config, opt Options) (*Daemon, error) {
	if opt.Clock == nil {
		opt.Clock = clock.Real{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if opt.RetryBase <= 0 {
		opt.RetryBase = time.Minute
	}
	if opt.RetryMax <= 0 {
		opt.RetryMax = time.Hour
	}
	if opt.MaxAttempts <= 0 {
		opt.MaxAttempts = 24
	}
	if opt.ReplyWait <= 0 {
		opt.ReplyWait = 5 * time.Second
	}
	d := &Daemon{
		cfg:      cfg,
		clk:      opt.Clock,
		log:      opt.Logger,
		opt:      opt,
		accounts: make(map[string]*account),
		byAddr:   make(map[string]*account),
		ready:    make(chan struct{}),
	}
	cls, err := classify.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("compiling rules: %w", err)
	}
	d.cls = cls
	for i := range cfg.Accounts {
		ac := &cfg.Accounts[i]
		pw, err := ac.Password()
		if err != nil {
			return nil, err
		}
		var holidays, workdays []calendar.Day
		for _, h := range cfg.Holidays {
			holidays = append(holidays, calendar.Day{Year: h.Year, Month: h.Month, Day: h.Day})
		}
		for _, w := range cfg.Workdays {
			workdays = append(workdays, calendar.Day{Year: w.Year, Month: w.Month, Day: w.Day})
		}
		win := cfg.Window(ac)
		cal, err := calendar.New(cfg.Location(ac), cfg.CalendarCode(ac), holidays, workdays,
			calendar.Window{Start: int(win.Start), End: int(win.End)})
		if err != nil {
			return nil, fmt.Errorf("account %s: calendar: %w", ac.Name, err)
		}
		sub, err := send.NewSubmitter(ac, pw, send.Options{Logger: d.log})
		if err != nil {
			return nil, fmt.Errorf("account %s: %w", ac.Name, err)
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
		d.accounts[ac.Name] = a
		d.byAddr[strings.ToLower(ac.Address)] = a
	}
	if opt.DB != nil {
		d.db = opt.DB
	} else {
		db, err := store.Open(filepath.Join(cfg.StateDir, DBFile), store.Options{Timeout: time.Second, Logger: d.log})
		if err != nil {
			return nil, err
		}
		d.db, d.ownDB = db, true
	}
	d.sched = schedule.NewScheduler(d.clk, d.log)
	return d, nil
}

// Store is the daemon's store (for the control API and tests).
func (d *Daemon) Store() *store.DB { return d.db }

// Ready is closed once every account finished its first sync.
func (d *Daemon) Ready() <-chan struct{} { return d.ready }

// Close closes the store if the daemon opened it.
func (d *Daemon) Close() error {
	if d.ownDB {
		return d.db.Close()
	}
	return nil
}

// Run starts every stage in flow order and blocks until ctx ends; then it
// stops them in reverse: no new steps are picked, in-flight sends finish
// (bounded by the SMTP timeout), watchers close.
func (d *Daemon) Run(ctx context.Context) error {
	if err := d.rebuildWheel(); err != nil {
		return err
	}
	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWatch()
	sendCtx, stopSend := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSend()

	var watchers, senders sync.WaitGroup
	for _, a := range d.accounts {
		a.watcher = imapwatch.New(a.cfg, a.password, &sink{d: d, a: a}, imapwatch.Options{
			Clock:       d.clk,
			Logger:      d.log,
			NeedBody:    d.cls.NeedsBody,
			DebugWriter: d.opt.IMAPDebug,
			MinBackoff:  d.opt.ReconnectMin,
			MaxBackoff:  d.opt.ReconnectMax,
		})
		watchers.Add(1)
		go func(a *account) {
			defer watchers.Done()
			if err := a.watcher.Run(watchCtx); err != nil && !errors.Is(err, context.Canceled) {
				d.log.Error("watcher stopped", "account", a.cfg.Name, "err", err)
			}
		}(a)
		go func(a *account) {
			select {
			case <-a.watcher.Ready():
				d.recoverInFlight(sendCtx, a)
				close(a.synced)
			case <-watchCtx.Done():
			}
		}(a)
		senders.Add(1)
		go func(a *account) {
			defer senders.Done()
			d.senderLoop(sendCtx, a)
		}(a)
	}
	go func() {
		for _, a := range d.accounts {
			select {
			case <-a.synced:
			case <-ctx.Done():
				return
			}
		}
		d.log.Info("all accounts synced", "accounts", len(d.accounts), "pending", d.sched.Len())
		close(d.ready)
	}()

	schedDone := make(chan error, 1)
	schedCtx, stopSched := context.WithCancel(ctx)
	defer stopSched()
	go func() { schedDone <- d.sched.Run(schedCtx, d.fire) }()

	<-ctx.Done()
	d.log.Info("shutting down")
	stopSched()
	<-schedDone
	// Let in-flight sends finish (the sender honours sendCtx between steps
	// and the SMTP timeout inside one), then stop the watchers.
	done := make(chan struct{})
	go func() { senders.Wait(); close(done) }()
	stopSend()
	select {
	case <-done:
	case <-time.After(8 * time.Second):
		d.log.Warn("sender did not stop in time")
	}
	stopWatch()
	watchers.Wait()
	return nil
}

// rebuildWheel loads every pending due time from the store (invariant 5).
func (d *Daemon) rebuildWheel() error {
	n := 0
	err := d.db.PendingDue(func(id uint64, due time.Time) bool {
		d.sched.Set(id, due)
		n++
		return true
	})
	if err != nil {
		return fmt.Errorf("rebuilding schedule: %w", err)
	}
	d.log.Info("schedule rebuilt", "pending", n)
	return nil
}

func (d *Daemon) emit(ev Event) {
	if ev.At.IsZero() {
		ev.At = d.clk.Now()
	}
	if d.opt.OnEvent != nil {
		d.opt.OnEvent(ev)
	}
}

// dueFor computes when step (1-based) of f falls due, counting from base.
func (d *Daemon) dueFor(a *account, rule *config.Rule, step int, base time.Time) (time.Time, bool) {
	steps := d.steps(rule)
	if step < 1 || step > len(steps) {
		return time.Time{}, false
	}
	after := steps[step-1].After
	due := a.cal.Add(base, after.Duration, after.BusinessDays)
	return a.cal.NextOpen(due), true
}

// steps returns a rule's chain; the opt-in pseudo-rule (nil) uses the first
// configured rule's chain.
func (d *Daemon) steps(rule *config.Rule) []config.Step {
	if rule != nil {
		return rule.Steps
	}
	if len(d.cfg.Rules) > 0 {
		return d.cfg.Rules[0].Steps
	}
	return nil
}

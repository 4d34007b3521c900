package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
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
	// DialConcurrency bounds how many IMAP connections (watchers and
	// short-lived ones alike) connect and log in at once; default
	// imapwatch.DefaultDialConcurrency.
	DialConcurrency int
	// DB, when set, is used instead of opening cfg.StateDir/followupd.db.
	DB *store.DB
	// Notify, when set, receives sd_notify states ("READY=1",
	// "STATUS=...", "WATCHDOG=1", "RELOADING=1", "STOPPING=1"); main
	// passes go-systemd's SdNotify. See notify.go.
	Notify func(state string) error
	// WatchdogInterval, when set, is how often WATCHDOG=1 is sent (main
	// uses half of systemd's WATCHDOG_USEC).
	WatchdogInterval time.Duration
	// StatusInterval is how often STATUS= is refreshed. Default 30s.
	StatusInterval time.Duration
	// LogLevel, when set, gets each reloaded config's log_level.
	LogLevel *slog.LevelVar
	// StopGrace bounds how long shutdown waits for an in-flight send
	// before cancelling it (rolled back when the message was not handed
	// over, else marked uncertain). Default 6s; shutdown as a whole stays
	// under 10s.
	StopGrace time.Duration
	// Version is followupd's version, for `followupd status` and the
	// followupd_build_info metric.
	Version string
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
//
// cfg, cls, accounts and byAddr are the configuration of one moment: entry
// points take d = d.current() so a decision sees the live configuration
// (reload.go). Every other field is set in New and never written again, or
// is a pointer shared by every view.
type Daemon struct {
	cfg   *config.Config
	db    *store.DB
	ownDB bool
	cls   *classify.Classifier
	sched *schedule.Scheduler
	clk   clock.Clock
	log   *slog.Logger
	opt   Options

	accounts map[string]*account // by account name; replaced (never modified) by Reload
	byAddr   map[string]*account // by lower-case address; replaced (never modified) by Reload

	live  *live                  // the live configuration and goroutines (reload.go)
	dial  *imapwatch.DialLimiter // shared by every IMAP connection this daemon opens
	ops   *ops                   // metrics and the control socket (metrics.go, control.go)
	ready chan struct{}
	house *housekeeper // summary, draft checks, approval notices (summary.go)
	hist  *horizon     // what a sync may take for history (horizon.go)
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

	// Lifecycle, touched only with live.reloadMu held (reload.go).
	quit       chan struct{}      // closed: the sender stops between steps
	senderDone chan struct{}      // closed when the sender goroutine returned
	stopWatch  context.CancelFunc // stops the watcher
	watchDone  chan struct{}      // closed when the watcher returned

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
	if opt.StatusInterval <= 0 {
		opt.StatusInterval = 30 * time.Second
	}
	if opt.StopGrace <= 0 {
		opt.StopGrace = 6 * time.Second
	}
	d.opt = opt
	d.live = &live{changed: make(chan struct{})}
	d.house = newHousekeeper()
	d.hist = &horizon{}
	d.dial = imapwatch.NewDialLimiter(opt.DialConcurrency)
	cls, err := classify.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("compiling rules: %w", err)
	}
	d.cls = cls
	d.accounts, d.byAddr, err = d.buildAccounts(cfg)
	if err != nil {
		return nil, err
	}
	d.live.cfg, d.live.cls, d.live.accounts, d.live.byAddr = d.cfg, d.cls, d.accounts, d.byAddr
	if opt.DB != nil {
		d.db = opt.DB
	} else {
		db, err := store.Open(filepath.Join(cfg.StateDir, DBFile), store.Options{Timeout: time.Second, Logger: d.log})
		if err != nil {
			return nil, err
		}
		d.db, d.ownDB = db, true
	}
	d.refreshHorizon()
	d.sched = schedule.NewScheduler(d.clk, d.log)
	d.ops = newOps(d)
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
// stops them in reverse within 10s: the scheduler stops (no new steps are
// picked), senders stop between steps and an in-flight send gets
// Options.StopGrace to finish before it is cancelled, then the watchers
// close their IDLE connections. The
// caller closes the store (Close) after Run returns.
func (d *Daemon) Run(ctx context.Context) error {
	if err := d.rebuildWheel(); err != nil {
		return err
	}
	// The control socket and metrics endpoint are bound before anything
	// starts, and closed last (after the watchers) by this defer.
	stopOps, err := d.startOps(ctx)
	if err != nil {
		return err
	}
	defer stopOps()
	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWatch()
	sendCtx, stopSend := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSend()

	l := d.live
	l.reloadMu.Lock()
	if l.running || l.stopped {
		l.reloadMu.Unlock()
		return errors.New("daemon: Run called twice")
	}
	l.running, l.watchCtx, l.sendCtx = true, watchCtx, sendCtx
	for _, a := range d.current().accounts {
		d.startWatcher(a)
		d.startSender(a)
	}
	l.reloadMu.Unlock()
	go d.waitReady(ctx)
	go d.serviceLoop(ctx)
	l.senders.Add(1)
	go func() { defer l.senders.Done(); d.housekeep(ctx, sendCtx) }()

	schedDone := make(chan error, 1)
	schedCtx, stopSched := context.WithCancel(ctx)
	defer stopSched()
	go func() { schedDone <- d.sched.Run(schedCtx, d.fire) }()

	<-ctx.Done()
	d.notify("STOPPING=1", "STATUS=shutting down")
	d.log.Info("shutting down")
	stopSched()
	<-schedDone
	// One grace period covers every in-flight send, a reload's included:
	// a reload holds reloadMu while it waits for the old senders to finish
	// their step, so even taking the lock can wait for a stuck send. After
	// StopGrace the sends are cancelled, and 2s later Run goes on anyway.
	soft := time.Now().Add(d.opt.StopGrace)
	hard := soft.Add(2 * time.Second)
	cancelled := false
	wait := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		case <-time.After(time.Until(soft)):
		}
		if !cancelled {
			cancelled = true
			d.log.Warn("send still in flight at shutdown; cancelling it", "waited", d.opt.StopGrace)
			stopSend()
		}
		select {
		case <-ch:
			return true
		case <-time.After(time.Until(hard)):
			return false
		}
	}
	stopped := make(chan struct{})
	go func() {
		l.reloadMu.Lock() // no reload from here on
		l.running, l.stopped = false, true
		for _, a := range d.current().accounts {
			close(a.quit)
		}
		l.reloadMu.Unlock()
		close(stopped)
	}()
	if !wait(stopped) {
		// The goroutine above still marks the daemon stopped once the
		// reload returns; what the reload starts gets cancelled contexts.
		d.log.Warn("reload did not finish in time; stopping without it")
	} else {
		done := make(chan struct{})
		go func() { l.senders.Wait(); close(done) }()
		if !wait(done) {
			d.log.Warn("sender did not stop in time")
		}
	}
	stopSend()
	stopWatch()
	watchers := make(chan struct{})
	go func() { l.watchers.Wait(); close(watchers) }()
	select {
	case <-watchers:
	case <-time.After(time.Second):
		d.log.Warn("watchers did not stop in time")
	}
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
	if ev.Kind == "sent" {
		d.noteSent(ev.At)
	}
	d.ops.metrics.Event(ev.Account, ev.Kind)
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

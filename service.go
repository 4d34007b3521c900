package main

// Running as a service: the logger, sd_notify, signals.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"

	"followupd/daemon"
)

// newServiceLogger logs to w at the level lv holds (set from level here,
// and again by every reload). format "text" is slog's text handler; when w
// is the journal's stream (JOURNAL_STREAM names w's device and inode, as
// systemd sets it for a service's stderr) the time= attribute is dropped,
// since journald stamps every line, and each line starts with its syslog
// priority ("<3>") so `journalctl -p err` works. format "json" is slog's
// JSON handler, unchanged.
func newServiceLogger(w io.Writer, format, level string, lv *slog.LevelVar) (*slog.Logger, error) {
	if level == "" {
		level = "info"
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level %q: %w", level, err)
	}
	lv.Set(l)
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "", "text":
	default:
		return nil, fmt.Errorf("log format %q: want text or json", format)
	}
	if !isJournal(w, os.Getenv("JOURNAL_STREAM")) {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	pw := &prioWriter{w: w}
	return slog.New(&journalHandler{inner: slog.NewTextHandler(pw, opts), w: pw}), nil
}

// isJournal reports whether w is the stream JOURNAL_STREAM ("DEV:INODE")
// describes (sd_journal_stream_fd(3): compare before trusting it, since the
// variable is inherited by children whose stderr may be redirected).
func isJournal(w io.Writer, stream string) bool {
	f, ok := w.(*os.File)
	if !ok || stream == "" {
		return false
	}
	devS, inoS, ok := strings.Cut(stream, ":")
	if !ok {
		return false
	}
	dev, err1 := strconv.ParseUint(devS, 10, 64)
	ino, err2 := strconv.ParseUint(inoS, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return false
	}
	return uint64(st.Dev) == dev && uint64(st.Ino) == ino
}

// journalHandler prefixes each record with its syslog priority
// (sd-daemon(3) "<N>" prefixes, honoured by journald).
type journalHandler struct {
	inner slog.Handler
	w     *prioWriter
}

func (h *journalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	h.w.mu.Lock()
	defer h.w.mu.Unlock()
	h.w.prio = priority(r.Level)
	return h.inner.Handle(ctx, r)
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &journalHandler{inner: h.inner.WithAttrs(as), w: h.w}
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	return &journalHandler{inner: h.inner.WithGroup(name), w: h.w}
}

// prioWriter writes one record (the text handler writes each in one call)
// with the priority its handler set; mu is held by journalHandler.Handle.
type prioWriter struct {
	mu   sync.Mutex
	prio int
	w    io.Writer
}

func (p *prioWriter) Write(b []byte) (int, error) {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "<%d>", p.prio)
	buf.Write(b)
	if _, err := p.w.Write(buf.Bytes()); err != nil {
		return 0, err
	}
	return len(b), nil
}

// priority maps slog levels to syslog priorities.
func priority(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3 // err
	case l >= slog.LevelWarn:
		return 4 // warning
	case l >= slog.LevelInfo:
		return 6 // info
	}
	return 7 // debug
}

// notifyTimeout bounds one sd_notify datagram. The notify socket is a
// datagram socket: when its reader (systemd, or whatever set
// NOTIFY_SOCKET) stops reading, its queue fills (net.unix.max_dgram_qlen,
// 10 by default on Linux) and a blocking send waits for ever. go-systemd's
// SdNotify sends without a deadline, which once kept a SIGHUP's reload
// (RELOADING=1), and with it SIGTERM's handling, and the shutdown
// (STOPPING=1) waiting for good. A state that cannot be queued in time is
// dropped: the service manager is not reading anyway.
const notifyTimeout = time.Second

// sdNotify sends state to the socket $NOTIFY_SOCKET names (a no-op
// without it), as sd_notify(3) does, waiting at most timeout.
func sdNotify(state string, timeout time.Duration) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	// A leading "@" is an abstract socket; net maps it as sd_notify does.
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	defer conn.Close()
	if err := conn.SetWriteDeadline(time.Now().Add(timeout)); err != nil {
		return fmt.Errorf("sd_notify: %w", err)
	}
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("sd_notify %s: %w", addr, err)
	}
	return nil
}

// serviceOptions adds the service-manager hooks to opt: sd_notify
// (a no-op without NOTIFY_SOCKET; each send bounded by notifyTimeout),
// the watchdog at half of WatchdogSec, the reloadable log level.
func serviceOptions(opt daemon.Options, lv *slog.LevelVar) daemon.Options {
	opt.Notify = func(state string) error { return sdNotify(state, notifyTimeout) }
	if iv, err := sddaemon.SdWatchdogEnabled(false); err == nil && iv > 0 {
		opt.WatchdogInterval = iv / 2
	}
	opt.LogLevel = lv
	return opt
}

// serviceSignals must be called before anything slow: SIGHUP's default
// action would kill the process.
func serviceSignals() (chan os.Signal, func()) {
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM)
	return ch, func() { signal.Stop(ch) }
}

// handleSignals: SIGHUP reloads path; the first SIGINT/SIGTERM stops the
// daemon gracefully (cancel); a second one exits at once. It returns when
// done is closed (Run returned).
//
// Reloads run on a goroutine of their own (one at a time; SIGHUPs that
// arrive meanwhile make one more), so that a slow reload (it waits for the
// senders to finish their step, and tells the service manager) never
// keeps SIGTERM from being handled.
func handleSignals(done <-chan struct{}, sigs <-chan os.Signal, d *daemon.Daemon, path string, log *slog.Logger, cancel func(), exit func(int)) {
	reload := make(chan struct{}, 1)
	stop := make(chan struct{}) // closed at the first SIGINT/SIGTERM: no reload starts after it
	go func() {
		for {
			select {
			case <-done:
				return
			case <-stop:
				return
			case <-reload:
			}
			select {
			case <-stop:
				return
			default:
			}
			_ = d.ReloadFile(path) // logs what it did or why not
		}
	}()
	stopping := false
	for {
		select {
		case <-done:
			return
		case s := <-sigs:
			switch {
			case s == syscall.SIGHUP && !stopping:
				select {
				case reload <- struct{}{}:
				default: // one is pending already
				}
			case s == syscall.SIGHUP:
			case !stopping:
				stopping = true
				close(stop)
				log.Info("signal received: stopping; a second signal exits at once", "signal", s.String())
				cancel()
			default:
				log.Warn("second signal: exiting at once", "signal", s.String())
				exit(1)
				return
			}
		}
	}
}

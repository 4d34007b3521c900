package daemon

import (
	"context"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Service-manager notifications (sd_notify). The daemon decides when
// (READY=1 after every account's first sync, STATUS= lines, WATCHDOG=1,
// RELOADING=1/READY=1 around a reload, STOPPING=1 at shutdown); main plugs
// in the transport (Options.Notify, go-systemd's SdNotify). With no Notify
// nothing is sent, so tests and the demo run the same code.

// notify sends the given state lines in one datagram.
func (d *Daemon) notify(lines ...string) {
	if d.opt.Notify == nil {
		return
	}
	if err := d.opt.Notify(strings.Join(lines, "\n")); err != nil {
		d.log.Debug("notifying service manager", "err", err)
	}
}

// monotonicUsec is the MONOTONIC_USEC= line systemd wants with RELOADING=1
// (required by Type=notify-reload, harmless with Type=notify).
func monotonicUsec() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return "MONOTONIC_USEC=0"
	}
	return fmt.Sprintf("MONOTONIC_USEC=%d", ts.Nano()/1000)
}

// Status is a one-line state for systemctl status: how many accounts have
// every folder connected, how many steps are pending, when the last
// reminder went out.
func (d *Daemon) Status() string {
	cur := d.current()
	connected := 0
	for _, a := range cur.accounts {
		fs := a.watcher.Status()
		ok := len(fs) > 0
		for _, f := range fs {
			ok = ok && f.Connected
		}
		if ok {
			connected++
		}
	}
	d.live.statusMu.Lock()
	last := d.live.lastSend
	d.live.statusMu.Unlock()
	lastText := "none yet"
	if !last.IsZero() {
		lastText = last.Local().Format("2006-01-02 15:04")
	}
	return fmt.Sprintf("%d/%d accounts connected, %d pending, last send %s",
		connected, len(cur.accounts), d.sched.Len(), lastText)
}

// noteSent records a reminder's time for Status.
func (d *Daemon) noteSent(at time.Time) {
	d.live.statusMu.Lock()
	if at.After(d.live.lastSend) {
		d.live.lastSend = at
	}
	d.live.statusMu.Unlock()
}

// serviceLoop pings the watchdog every Options.WatchdogInterval and
// refreshes STATUS= every StatusInterval until ctx ends. It runs on real
// time, not the daemon's clock: systemd's watchdog is wall-clock, and a
// fake clock in tests must not starve it.
func (d *Daemon) serviceLoop(ctx context.Context) {
	if d.opt.Notify == nil {
		return
	}
	status := time.NewTicker(d.opt.StatusInterval)
	defer status.Stop()
	var wd <-chan time.Time
	if d.opt.WatchdogInterval > 0 {
		t := time.NewTicker(d.opt.WatchdogInterval)
		defer t.Stop()
		wd = t.C
		d.notify("WATCHDOG=1")
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-wd:
			// The scheduler's lock is the heart of the daemon: if
			// Len() returns, fire and the wheel are not wedged.
			_ = d.sched.Len()
			d.notify("WATCHDOG=1")
		case <-status.C:
			d.notify("STATUS=" + d.Status())
		}
	}
}

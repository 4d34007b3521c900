package daemon

import (
	"context"
	"slices"
	"sync"
	"time"

	"followupd/message"
	"followupd/metrics"
	"followupd/store"
)

// ops is the operator-facing side of a daemon: its metrics and what the
// control server reports about itself. One per Daemon, shared by every
// view current() makes.
type ops struct {
	metrics *metrics.Metrics
	started time.Time

	mu          sync.Mutex // guards socket and metricsAddr
	socket      string     // control socket path while serving
	metricsAddr string     // bound metrics address while serving
}

func newOps(d *Daemon) *ops {
	o := &ops{started: d.clk.Now()}
	o.metrics = metrics.New(d.opt.Version, d.metricsSnapshot)
	return o
}

// Metrics is the daemon's metrics registry holder (tests gather from it).
func (d *Daemon) Metrics() *metrics.Metrics { return d.ops.metrics }

// metricsSnapshot reads, at scrape time, what gauges report: each watched
// folder's connection and the follow-ups by state.
func (d *Daemon) metricsSnapshot(ctx context.Context) (metrics.Snapshot, error) {
	v := d.current()
	s := metrics.Snapshot{Ready: isClosed(d.ready)}
	for _, name := range sortedKeys(v.accounts) {
		a := v.accounts[name]
		if a.watcher == nil {
			continue
		}
		for _, f := range a.watcher.Status() {
			s.Folders = append(s.Folders, metrics.Folder{Account: name, Mailbox: f.Mailbox, Role: f.Role.String(),
				Connected: f.Connected, Reconnects: f.Reconnects, LastSync: f.LastSync})
		}
	}
	counts, err := d.db.Counts()
	if err != nil {
		return s, err
	}
	s.States = map[string]int{}
	for st, n := range counts {
		s.States[st.String()] = n
	}
	for st := store.StateWaiting; st <= store.StateUncertain; st++ {
		s.StateNames = append(s.StateNames, st.String())
	}
	return s, nil
}

// observeBatch counts the messages a batch newly indexed and, once the
// account's first sync is done (new mail through IDLE or polling), how long
// after arrival each reached the daemon.
func (d *Daemon) observeBatch(a *account, recs []*message.Record, fresh []bool) {
	now := d.clk.Now()
	n := 0
	live := a.watcher != nil && isClosed(a.watcher.Ready())
	for i, rec := range recs {
		if i >= len(fresh) || !fresh[i] {
			continue
		}
		n++
		if live {
			d.ops.metrics.IdleLag(a.cfg.Name, rec.Internal, now)
		}
	}
	d.ops.metrics.Indexed(a.cfg.Name, n)
}

// observeAnswer records how long after the answer's Date and its arrival
// the follow-up was marked answered.
func (d *Daemon) observeAnswer(account string, rec *message.Record, answered time.Time) {
	d.ops.metrics.Answer(account, rec.Date, rec.Internal, answered)
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

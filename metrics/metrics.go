package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Folder is one watched folder's connection state at scrape time.
type Folder struct {
	Account, Mailbox, Role string
	Connected              bool
	Reconnects             int
	LastSync               time.Time // zero: not synced yet
}

// Snapshot is what a Source reports at scrape time.
type Snapshot struct {
	Ready   bool
	Folders []Folder
	// States counts follow-ups by state name; every name in StateNames is
	// reported, absent ones as 0, so a state dropping to zero is visible.
	States     map[string]int
	StateNames []string
}

// Source returns the current snapshot; it is called once per scrape.
type Source func(ctx context.Context) (Snapshot, error)

// Buckets for latencies from seconds (IDLE) to days (downtime).
var latencyBuckets = []float64{1, 5, 15, 30, 60, 120, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400, 7 * 86400}

// Metrics holds the registry and the daemon-updated families.
type Metrics struct {
	reg *prometheus.Registry

	events    *prometheus.CounterVec
	sent      *prometheus.CounterVec
	failed    *prometheus.CounterVec
	indexed   *prometheus.CounterVec
	answer    *prometheus.HistogramVec
	idleLag   *prometheus.HistogramVec
	scrapeErr prometheus.Counter
}

// New builds a registry with followupd's families, Go runtime and process
// metrics, and a collector reading src at scrape time. version goes into
// followupd_build_info.
func New(version string, src Source) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "followupd_events_total",
		Help: "Decisions by kind (tracked, answered, autoreply, bounced, manual, stopped, sent, skipped, failed, retry, uncertain, held, drafted, ...).",
	}, []string{"account", "kind"})
	m.sent = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "followupd_reminders_sent_total",
		Help: "Reminders accepted by SMTP (or proven by their copy in Sent).",
	}, []string{"account"})
	m.failed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "followupd_reminders_failed_total",
		Help: "Reminders that failed permanently (SMTP 5xx, render error, too many temporary failures).",
	}, []string{"account"})
	m.indexed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "followupd_messages_indexed_total",
		Help: "Messages newly stored in the index.",
	}, []string{"account"})
	m.answer = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "followupd_answer_latency_seconds",
		Help:    "From an answer's Date header (since=date) or its arrival, IMAP INTERNALDATE (since=arrival), to the moment its follow-up is marked answered.",
		Buckets: latencyBuckets,
	}, []string{"account", "since"})
	m.idleLag = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "followupd_idle_lag_seconds",
		Help:    "From a message's arrival (INTERNALDATE) to the watcher handing it to the daemon, after the first sync.",
		Buckets: latencyBuckets,
	}, []string{"account"})
	m.scrapeErr = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "followupd_scrape_errors_total",
		Help: "Scrapes in which the state snapshot could not be read.",
	})
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "followupd_build_info",
		Help:        "Always 1; the version label says which followupd runs.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	build.Set(1)
	m.reg.MustRegister(m.events, m.sent, m.failed, m.indexed, m.answer, m.idleLag, m.scrapeErr, build,
		&snapshotCollector{src: src, errs: m.scrapeErr},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Registry is the daemon's registry (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Event counts one daemon event of kind for account.
func (m *Metrics) Event(account, kind string) {
	m.events.WithLabelValues(account, kind).Inc()
	switch kind {
	case "sent":
		m.sent.WithLabelValues(account).Inc()
	case "failed":
		m.failed.WithLabelValues(account).Inc()
	}
}

// Indexed counts n messages newly stored for account.
func (m *Metrics) Indexed(account string, n int) {
	if n > 0 {
		m.indexed.WithLabelValues(account).Add(float64(n))
	}
}

// Answer observes how long after its Date and its arrival an answer was
// recognised; a zero time is skipped, a negative span (clock skew) counts 0.
func (m *Metrics) Answer(account string, date, arrival, answered time.Time) {
	if !date.IsZero() {
		m.answer.WithLabelValues(account, "date").Observe(max(0, answered.Sub(date).Seconds()))
	}
	if !arrival.IsZero() {
		m.answer.WithLabelValues(account, "arrival").Observe(max(0, answered.Sub(arrival).Seconds()))
	}
}

// IdleLag observes how long after its arrival a message reached the daemon.
func (m *Metrics) IdleLag(account string, arrival, handled time.Time) {
	if !arrival.IsZero() {
		m.idleLag.WithLabelValues(account).Observe(max(0, handled.Sub(arrival).Seconds()))
	}
}

// Handler serves the registry in the Prometheus exposition formats.
func (m *Metrics) Handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:          slogAdapter{log},
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          m.reg, // promhttp_metric_handler_errors_total
		EnableOpenMetrics: true,
	})
}

// Serve listens on addr and serves /metrics until ctx ends. It returns once
// listening, with the bound address (addr may use port 0); the listen error
// otherwise. done is closed when the server has stopped.
func (m *Metrics) Serve(ctx context.Context, addr string, log *slog.Logger) (bound string, done <-chan struct{}, err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler(log))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "followupd metrics: /metrics")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return ln.Addr().String(), ch, nil
}

type slogAdapter struct{ log *slog.Logger }

func (a slogAdapter) Println(v ...any) { a.log.Warn("serving metrics", "err", fmt.Sprint(v...)) }

// snapshotCollector turns a Source into gauges at scrape time.
type snapshotCollector struct {
	src  Source
	errs prometheus.Counter
}

var (
	descReady      = prometheus.NewDesc("followupd_ready", "1 once every account finished its first sync.", nil, nil)
	descConnected  = prometheus.NewDesc("followupd_imap_connected", "1 while the folder's IMAP connection is up.", []string{"account", "mailbox", "role"}, nil)
	descReconnects = prometheus.NewDesc("followupd_imap_reconnects_total", "IMAP reconnects of the folder since start.", []string{"account", "mailbox", "role"}, nil)
	descLastSync   = prometheus.NewDesc("followupd_imap_last_sync_timestamp_seconds", "When the folder last completed a sync or fetch (Unix time).", []string{"account", "mailbox", "role"}, nil)
	descFollowUps  = prometheus.NewDesc("followupd_followups", "Follow-ups by state.", []string{"state"}, nil)
)

func (c *snapshotCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descReady, descConnected, descReconnects, descLastSync, descFollowUps} {
		ch <- d
	}
}

func (c *snapshotCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := c.src(ctx)
	if err != nil {
		c.errs.Inc()
		ch <- prometheus.NewInvalidMetric(descFollowUps, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(descReady, prometheus.GaugeValue, b2f(s.Ready))
	for _, f := range s.Folders {
		ch <- prometheus.MustNewConstMetric(descConnected, prometheus.GaugeValue, b2f(f.Connected), f.Account, f.Mailbox, f.Role)
		ch <- prometheus.MustNewConstMetric(descReconnects, prometheus.CounterValue, float64(f.Reconnects), f.Account, f.Mailbox, f.Role)
		if !f.LastSync.IsZero() {
			ch <- prometheus.MustNewConstMetric(descLastSync, prometheus.GaugeValue, float64(f.LastSync.UnixNano())/1e9, f.Account, f.Mailbox, f.Role)
		}
	}
	seen := map[string]bool{}
	for _, name := range s.StateNames {
		seen[name] = true
		ch <- prometheus.MustNewConstMetric(descFollowUps, prometheus.GaugeValue, float64(s.States[name]), name)
	}
	for name, n := range s.States {
		if !seen[name] {
			ch <- prometheus.MustNewConstMetric(descFollowUps, prometheus.GaugeValue, float64(n), name)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

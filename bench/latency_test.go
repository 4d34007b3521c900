package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"followupd/daemon"
)

// idleWatch is a bare client idling on one INBOX, recording when the
// message count reached each value.
type idleWatch struct {
	mu   sync.Mutex
	seen map[uint32]time.Time // message count -> first time it was announced
	base uint32
	c    *imapclient.Client
	cmd  *imapclient.IdleCommand
}

func (iw *idleWatch) at(n uint32) (time.Time, bool) {
	iw.mu.Lock()
	defer iw.mu.Unlock()
	var best time.Time
	for k, t := range iw.seen {
		if k >= n && (best.IsZero() || t.Before(best)) {
			best = t
		}
	}
	return best, !best.IsZero()
}

func startIdle(b testing.TB, w *mailWorld, user string) *idleWatch {
	b.Helper()
	iw := &idleWatch{seen: map[uint32]time.Time{}}
	h := &imapclient.UnilateralDataHandler{Mailbox: func(d *imapclient.UnilateralDataMailbox) {
		if d.NumMessages != nil {
			now := time.Now()
			iw.mu.Lock()
			if _, ok := iw.seen[*d.NumMessages]; !ok {
				iw.seen[*d.NumMessages] = now
			}
			iw.mu.Unlock()
		}
	}}
	c, err := login(w, user, h)
	if err != nil {
		b.Fatal(err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		b.Fatal(err)
	}
	iw.base = sel.NumMessages
	iw.c = c
	if iw.cmd, err = c.Idle(); err != nil {
		b.Fatal(err)
	}
	return iw
}

func (iw *idleWatch) stop() {
	iw.cmd.Close()
	iw.cmd.Wait()
	iw.c.Close()
}

// BenchmarkAnswerLatency: replies to tracked offers are sent through
// Postfix's MX port, spread over replyAccounts accounts at replyRate per
// second; the figure is SMTP acceptance -> follow-up answered in the store
// (the daemon's event), the limit is SMTP acceptance -> EXISTS at a bare
// client idling on the same INBOX, for the same deliveries. Then a restart
// with all mailboxes unchanged (resync per 10 accounts).
func BenchmarkAnswerLatency(b *testing.B) {
	sc := getScale()
	w := startWorld(b, sc.replyAccounts, "rep", 0)
	perAcct := (sc.replies + sc.replyAccounts - 1) / sc.replyAccounts
	now := time.Now()
	type offer struct {
		user, id, subj, client string
	}
	offers := map[string][]offer{}
	for ai, u := range w.users {
		dir, err := w.s.Maildir(u, "Sent")
		if err != nil {
			b.Fatal(err)
		}
		var msgs [][]byte
		for k := range perAcct {
			o := offer{user: u, id: fmt.Sprintf("lat-%d-%d@seller.test", ai, k),
				subj: fmt.Sprintf("Коммерческое предложение №%d-%d", ai, k), client: fmt.Sprintf("c%d-%d@buyer.test", ai, k)}
			offers[u] = append(offers[u], o)
			msgs = append(msgs, offerMsg(u, o.id, o.subj, o.client, now.Add(-2*time.Hour), 20))
		}
		if err := writeMaildir(dir, ai*1000, msgs, nil, "S"); err != nil {
			b.Fatal(err)
		}
	}

	state := filepath.Join(b.TempDir(), "state")
	cfg, _ := w.config(b, state, w.users)
	var mu sync.Mutex
	answered := map[string]time.Time{}
	tracked := 0
	allAnswered := make(chan struct{})
	onEvent := func(ev daemon.Event) {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		switch ev.Kind {
		case "tracked":
			tracked++
		case "answered":
			if _, ok := answered[ev.MessageID]; !ok {
				answered[ev.MessageID] = now
				if len(answered) == sc.replies {
					close(allAnswered)
				}
			}
		}
	}
	_, _, stop := runDaemon(b, cfg, daemon.Options{OnEvent: onEvent})
	mu.Lock()
	if tracked != perAcct*len(w.users) {
		b.Fatalf("tracked %d offers, want %d", tracked, perAcct*len(w.users))
	}
	mu.Unlock()
	idles := map[string]*idleWatch{}
	for _, u := range w.users {
		idles[u] = startIdle(b, w, u)
	}

	type sent struct {
		user, offer string
		n           uint32 // INBOX count once delivered
		at          time.Time
	}
	var sends []sent
	b.ResetTimer()
	tick := time.NewTicker(time.Duration(float64(time.Second) / sc.replyRate))
	for j := range sc.replies {
		<-tick.C
		u := w.users[j%len(w.users)]
		o := offers[u][j/len(w.users)]
		raw := replyMsg(o.client, u, o.id, fmt.Sprintf("re-%d@buyer.test", j), o.subj, time.Now(), 15)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := w.s.Send(ctx, o.client, []string{u}, raw)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		sends = append(sends, sent{user: u, offer: o.id, n: idles[u].base + uint32(j/len(w.users)) + 1, at: time.Now()})
	}
	tick.Stop()
	select {
	case <-allAnswered:
	case <-time.After(60 * time.Second):
		mu.Lock()
		b.Fatalf("%d of %d follow-ups answered after 60 s", len(answered), sc.replies)
	}
	b.StopTimer()
	time.Sleep(time.Second) // the last EXISTS
	var dl, bl []time.Duration
	for _, s := range sends {
		mu.Lock()
		a := answered[s.offer]
		mu.Unlock()
		dl = append(dl, a.Sub(s.at))
		if t, ok := idles[s.user].at(s.n); ok {
			bl = append(bl, t.Sub(s.at))
		}
	}
	for _, iw := range idles {
		iw.stop()
	}
	stop()
	if len(bl) != len(dl) {
		b.Errorf("bare client saw %d of %d deliveries", len(bl), len(dl))
	}
	dm, dp99, bm, bp99 := median(dl), percentile(dl, 0.99), median(bl), percentile(bl, 0.99)
	b.ReportMetric(float64(dm)/1e6, "ms-median")
	b.ReportMetric(float64(dp99)/1e6, "ms-p99")
	record(b, sc, row{
		Figure: fmt.Sprintf("answer latency, %d replies over %d accounts via Postfix", sc.replies, sc.replyAccounts),
		Value:  fmt.Sprintf("median %s, p90 %s, p99 %s", ms(dm), ms(percentile(dl, 0.9)), ms(dp99)),
		Limit:  fmt.Sprintf("bare IDLE EXISTS: median %s, p90 %s, p99 %s", ms(bm), ms(percentile(bl, 0.9)), ms(bp99)),
		Ratio:  fmt.Sprintf("%.2f (median)", float64(dm)/float64(bm)), Target: "median ≤ 1.2 × limit, p99 < 1 s",
		Verdict: verdict(float64(dm) <= 1.2*float64(bm) && dp99 < time.Second),
		Notes:   fmt.Sprintf("%.0f replies/s, measured from the MX's 250 after DATA; the daemon's 'answered' event vs the bare client's EXISTS for the same delivery", sc.replyRate),
	})

	// Restart with nothing changed: resync of every account.
	cfg, _ = w.config(b, state, w.users)
	tc := &traceCounter{}
	took, _, stop2 := runDaemon(b, cfg, daemon.Options{IMAPDebug: tc})
	stop2()
	bareSel := bareSelect(b, w, w.users)
	per10 := time.Duration(float64(took) * 10 / float64(len(w.users)))
	record(b, sc, row{
		Figure: fmt.Sprintf("resync after restart, %d accounts unchanged", len(w.users)),
		Value:  fmt.Sprintf("%s (%s per 10 accounts)", ms(took), ms(per10)),
		Limit:  fmt.Sprintf("%s bare login + SELECT of every INBOX and Sent in parallel", ms(bareSel)),
		Ratio:  fmt.Sprintf("%.2f", took.Seconds()/bareSel.Seconds()), Target: "< 1 s per 10 accounts",
		Verdict: verdict(per10 < time.Second),
		Notes:   fmt.Sprintf("process already running; New → Ready; %d UID FETCH, %d UID SEARCH sent", tc.fetch, tc.search),
	})
	if tc.fetch != 0 {
		b.Errorf("resync of unchanged mailboxes sent %d UID FETCH", tc.fetch)
	}
}

package daemon_test

import (
	"context"
	"strings"
	"testing"
	"time"
)

// ownSummaryConfig: the senders' own summaries only (no leads, so no team
// summary), each its own schedule.
const ownSummaryConfig = `
[summary]
enabled = true
time = "08:30"
`

// A failed summary is tried again 15 minutes later only when the failure
// may pass (4xx); a permanent refusal (a 5xx that is not about the
// account's credentials: an address that no longer exists, content refused)
// is tried once that day, not recorded as sent, and tried again the next
// business day. Maria's account comes first, so her attempt is over when
// Ivan's summary arrives; the failure is then lifted, so a retry the same
// day would go through and be counted.
func TestSummaryRetryByRefusal(t *testing.T) {
	maria := "maria@seller.test"
	for _, tc := range []struct {
		name    string
		fail    func(w *world)
		retried bool
	}{
		{"rcpt 550 5.1.1: address gone", func(w *world) { w.smtp.FailRecipient(maria, 550, "5.1.1", "no such user") }, false},
		{"data 554: content refused", func(w *world) { w.smtp.FailNext(1, 554, "rejected by policy") }, false},
		{"rcpt 451: mailbox busy", func(w *world) { w.smtp.FailRecipient(maria, 451, "4.3.0", "mailbox busy") }, true},
		{"data 451: try later", func(w *world) { w.smtp.FailNext(1, 451, "try later") }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msk := monday(t).Location()
			w := newWorld(t, monday(t), maria, seller)
			w.run(w.config(ownSummaryConfig, maria, seller))
			got := w.summaryCount(maria, seller)
			tc.fail(w)
			w.advanceTo(time.Date(2026, 11, 24, 8, 30, 0, 0, msk))
			got("Tuesday 08:30, Maria's refused", 1, 0, 1)
			w.smtp.FailRecipient(maria, 0, "", "")
			w.smtp.FailNext(0, 0, "")
			w.advanceTo(time.Date(2026, 11, 24, 8, 44, 0, 0, msk))
			got("08:44", 0, 0, 1)
			w.advanceTo(time.Date(2026, 11, 24, 8, 45, 0, 0, msk))
			if tc.retried {
				got("08:45: Maria's again", 1, 1, 1)
			} else {
				got("08:45: not again", 0, 0, 1)
			}
			w.advanceTo(time.Date(2026, 11, 24, 23, 59, 0, 0, msk))
			if tc.retried {
				got("Tuesday 23:59", 0, 1, 1)
			} else {
				got("Tuesday 23:59: not again that day", 0, 0, 1)
			}
			w.advanceTo(time.Date(2026, 11, 25, 8, 30, 0, 0, msk))
			if tc.retried {
				got("Wednesday 08:30", 2, 2, 2)
			} else {
				got("Wednesday 08:30: tried again", 2, 1, 2)
			}
		})
	}
}

// A summary the server may have taken (it read the whole message, the
// reply was lost) counts as sent that day: no copy every 15 minutes.
func TestSummaryMaybeSentNotResent(t *testing.T) {
	msk := monday(t).Location()
	w := newWorld(t, monday(t), seller)
	d, _ := w.run(w.config(ownSummaryConfig, seller))
	got := w.summaryCount(seller)
	w.smtp.DropNext(1)
	w.advanceTo(time.Date(2026, 11, 24, 8, 30, 0, 0, msk))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := w.smtp.Wait(ctx, 1); err != nil {
		t.Fatal(err)
	}
	w.advanceTo(time.Date(2026, 11, 24, 12, 0, 0, 0, msk))
	got("Tuesday noon", 0, 1)
	if v, err := d.Store().Meta("summary/last/" + seller); err != nil || !strings.HasPrefix(string(v), "2026-11-24 ") {
		t.Errorf("record after the lost reply: %q, %v; want Tuesday's", v, err)
	}
	w.advanceTo(time.Date(2026, 11, 25, 8, 30, 0, 0, msk))
	got("Wednesday 08:30", 1, 2)
}

// A retry that starts before midnight and is accepted after it counts for
// the day it was accepted on: that day's own summary does not follow it
// (two on one local day), the next business day's does.
func TestSummaryRetryPastMidnight(t *testing.T) {
	msk := monday(t).Location()
	w := newWorld(t, time.Date(2026, 11, 24, 23, 40, 0, 0, msk), seller)
	// Monday's summary went out; Tuesday's is caught up at the start.
	w.putMeta(map[string]string{"summary/last/" + seller: "2026-11-23 2026-11-23T05:30:00Z 2026-11-23T05:30:00Z Europe/Moscow"})
	cfg := w.config(ownSummaryConfig, seller)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w.smtp.FailNext(1, 451, "try later")
	release1 := w.smtp.Hold()
	defer release1()
	w.run(cfg)
	got := w.summaryCount(seller)
	if err := w.smtp.WaitHeld(ctx); err != nil {
		t.Fatal(err)
	}
	release2 := w.smtp.Hold() // for the retry
	defer release2()
	release1() // 23:40's try: 451, retried at 23:55
	w.advanceTo(time.Date(2026, 11, 24, 23, 55, 0, 0, msk))
	if err := w.smtp.WaitHeld(ctx); err != nil {
		t.Fatal(err)
	}
	w.advanceTo(time.Date(2026, 11, 25, 0, 1, 0, 0, msk))
	release2() // accepted Wednesday 00:01
	got("Wednesday 00:01", 1, 1)
	w.advanceTo(time.Date(2026, 11, 25, 12, 0, 0, 0, msk))
	got("Wednesday noon: not a second that day", 0, 1)
	w.advanceTo(time.Date(2026, 11, 26, 8, 30, 0, 0, msk))
	got("Thursday 08:30", 1, 2)
}

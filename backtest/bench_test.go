package backtest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"followupd/backtest"
	"followupd/message"
)

// BenchmarkReplay replays 90 days of one busy sender: 2,000 offers, half
// of them answered, without IMAP (records handed to Replay directly).
func BenchmarkReplay(b *testing.B) {
	cfg := newHistory(b).config("")
	start := at(time.March, 2, 9, 0)
	var recs []*message.Record
	for i := 0; i < 2000; i++ {
		sent := start.Add(time.Duration(i) * 63 * time.Minute)
		id := fmt.Sprintf("o%d@seller.example", i)
		client := fmt.Sprintf("buyer%d@client%d.example", i, i)
		recs = append(recs, &message.Record{Account: sales, Mailbox: "Sent", Role: message.RoleSent, UID: uint32(i + 1),
			MessageID: id, From: []message.Address{{Addr: sales}}, To: []message.Address{{Addr: client}},
			Subject: fmt.Sprintf("Offer %d", i), Date: sent, Internal: sent})
		if i%2 == 0 {
			reply := sent.Add(time.Duration(i%9) * 24 * time.Hour)
			recs = append(recs, &message.Record{Account: sales, Mailbox: "INBOX", Role: message.RoleInbox, UID: uint32(i + 1),
				MessageID: "re." + id, InReplyTo: []string{id}, From: []message.Address{{Addr: client}}, To: []message.Address{{Addr: sales}},
				Subject: fmt.Sprintf("Re: Offer %d", i), Date: reply, Internal: reply})
		}
	}
	until := start.AddDate(0, 0, 100)
	b.ResetTimer()
	for b.Loop() {
		res, err := backtest.Replay(context.Background(), cfg, recs, backtest.Options{Since: start, Until: until, TempDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Threads) != 2000 {
			b.Fatalf("%d threads", len(res.Threads))
		}
	}
	b.ReportMetric(float64(len(recs)), "messages/op")
}

package daemon_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"followupd/config"
	"followupd/daemon"
	"followupd/store"
)

// zonedConfig is w.config with extra lines in some accounts' tables
// (address -> TOML lines), loaded again through config.Load so the
// per-account settings are parsed and checked as a sysadmin's would be.
func (w *world) zonedConfig(extra string, own map[string]string, senders ...string) *config.Config {
	w.t.Helper()
	w.config(extra, senders...)
	path := filepath.Join(w.dir, "followupd.toml")
	b, err := os.ReadFile(path)
	if err != nil {
		w.t.Fatal(err)
	}
	s := string(b)
	for addr, lines := range own {
		at := fmt.Sprintf("address = %q\n", addr)
		if !strings.Contains(s, at) {
			w.t.Fatalf("no account %s in the config", addr)
		}
		s = strings.Replace(s, at, at+lines+"\n", 1)
	}
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		w.t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		w.t.Fatal(err)
	}
	return cfg
}

// summaryCount returns a check for a test: it waits for n summaries, makes
// sure no other follows, and compares how many each of addrs has had in
// all with want.
func (w *world) summaryCount(addrs ...string) func(when string, n int, want ...int) {
	return func(when string, n int, want ...int) {
		w.t.Helper()
		for range n {
			w.expect("summary", "")
		}
		w.quiet("summary", 200*time.Millisecond)
		var have []int
		for _, a := range addrs {
			have = append(have, len(w.smtpTo(a)))
		}
		if !slices.Equal(have, want) {
			w.t.Fatalf("%s: summaries to %v: %v, want %v", when, addrs, have, want)
		}
	}
}

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// The team summary is sent through Maria's account, whose zone is not the
// top-level one: it must still follow the top-level zone.
const zonedSummaryConfig = `
[summary]
enabled = true
time = "08:30"
leads = ["boss@seller.test"]
from_account = "maria@seller.test"
`

// Each sender's own summary goes out at [summary] time in their account's
// zone and on their account's business days; the team summary keeps the
// top-level zone and calendar. Ivan inherits Moscow and the Russian
// calendar; Maria's account says Vladivostok (08:30 there is 01:30 in
// Moscow) and the US calendar (Thursday 26 Nov 2026 is Thanksgiving, a
// working day in Russia). A restart across Maria's send time sends hers
// once, late, and a second restart does not send it again.
func TestSummaryInEachAccountsZone(t *testing.T) {
	start := monday(t) // Monday 23 Nov 10:00 Moscow, 17:00 Vladivostok: both slots passed
	msk := start.Location()
	vlat := zone(t, "Asia/Vladivostok")
	maria := "maria@seller.test"
	w := newWorld(t, start, seller, maria, client, boss)
	cfg := func() *config.Config {
		return w.zonedConfig(zonedSummaryConfig, map[string]string{maria: "time_zone = \"Asia/Vladivostok\"\ncalendar = \"us\""}, seller, maria)
	}
	_, stop := w.run(cfg())
	got := w.summaryCount(seller, maria, boss)
	lastTo := func(addr string) string {
		ms := w.smtpTo(addr)
		return ms[len(ms)-1].rec.Body
	}

	got("first start after both slots", 0, 0, 0, 0)
	w.advanceTo(time.Date(2026, 11, 24, 8, 29, 0, 0, vlat))
	got("Tuesday 08:29 Vladivostok", 0, 0, 0, 0)
	w.advanceTo(time.Date(2026, 11, 24, 8, 30, 0, 0, vlat))
	got("Tuesday 08:30 Vladivostok", 1, 0, 1, 0)
	if body := lastTo(maria); !strings.Contains(body, "Follow-ups for Sender, Tue 24 Nov 2026 08:30 (Asia/Vladivostok)") {
		t.Errorf("Maria's summary is not her 08:30:\n%s", body)
	}
	w.advanceTo(time.Date(2026, 11, 24, 8, 29, 0, 0, msk))
	got("Tuesday 08:29 Moscow", 0, 0, 1, 0)
	w.advanceTo(time.Date(2026, 11, 24, 8, 30, 0, 0, msk))
	got("Tuesday 08:30 Moscow", 2, 1, 1, 1)
	if body := lastTo(boss); !strings.Contains(body, "Tue 24 Nov 2026 08:30 (Europe/Moscow)") {
		t.Errorf("the team summary is not Moscow's 08:30:\n%s", body)
	}

	// Wednesday as usual; Thursday is Maria's holiday, not Ivan's nor the team's.
	w.advanceTo(time.Date(2026, 11, 25, 8, 30, 0, 0, msk))
	got("Wednesday", 3, 2, 2, 2)
	w.advanceTo(time.Date(2026, 11, 26, 8, 30, 0, 0, msk))
	got("Thursday (Thanksgiving in Maria's calendar)", 2, 3, 2, 3)

	// Down over Maria's Friday 08:30: back at 09:00 hers goes out once,
	// covering her day since Wednesday's summary.
	w.advanceTo(time.Date(2026, 11, 27, 8, 0, 0, 0, vlat))
	got("Friday 08:00 Vladivostok", 0, 3, 2, 3)
	stop()
	w.advanceTo(time.Date(2026, 11, 27, 9, 0, 0, 0, vlat))
	_, stop = w.run(cfg())
	got("restart at Friday 09:00 Vladivostok", 1, 3, 3, 3)
	if body := lastTo(maria); !strings.Contains(body, "Fri 27 Nov 2026 09:00 (Asia/Vladivostok)") || !strings.Contains(body, "ANSWERS SINCE Wed 25 Nov 08:30") {
		t.Errorf("Maria's late Friday summary:\n%s", body)
	}
	stop()
	w.advanceTo(time.Date(2026, 11, 27, 10, 0, 0, 0, vlat))
	d, _ := w.run(cfg())
	got("second restart the same day", 0, 3, 3, 3)
	w.advanceTo(time.Date(2026, 11, 27, 8, 30, 0, 0, msk))
	got("Friday 08:30 Moscow", 2, 4, 3, 4)

	// `followupd summary -print` starts each summary's day at its own last send.
	w.advanceTo(time.Date(2026, 11, 27, 12, 0, 0, 0, msk))
	ms, err := daemon.Summaries(cfg(), d.Store(), w.clk.Now(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		want := "SINCE Fri 27 Nov 08:30"
		if m.Account == maria && !m.Team {
			want = "SINCE Fri 27 Nov 09:00"
		}
		if !strings.Contains(m.Text, want) {
			t.Errorf("printed summary to %v: no %q:\n%s", m.To, want, m.Text)
		}
	}
}

// A reload that moves Maria's account between zones neither sends her a
// second summary for a local day she already had nor skips the next one.
func TestSummaryReloadMovesZone(t *testing.T) {
	start := monday(t)
	msk := start.Location()
	vlat := zone(t, "Asia/Vladivostok")
	maria := "maria@seller.test"
	w := newWorld(t, start, seller, maria, client, boss)
	inVlat := func() *config.Config {
		return w.zonedConfig(summaryConfig, map[string]string{maria: `time_zone = "Asia/Vladivostok"`}, seller, maria)
	}
	d, _ := w.run(inVlat())
	got := w.summaryCount(seller, maria, boss)
	w.advanceTo(time.Date(2026, 11, 24, 8, 30, 0, 0, vlat))
	got("Tuesday 08:30 Vladivostok", 1, 0, 1, 0)
	// Maria moves to Moscow: she had Tuesday's summary already.
	w.advanceTo(time.Date(2026, 11, 24, 2, 0, 0, 0, msk))
	if err := d.Reload(w.config(summaryConfig, seller, maria)); err != nil {
		t.Fatal(err)
	}
	w.advanceTo(time.Date(2026, 11, 24, 8, 30, 0, 0, msk))
	got("Tuesday 08:30 Moscow, Maria moved there", 2, 1, 1, 1)
	w.advanceTo(time.Date(2026, 11, 25, 8, 30, 0, 0, msk))
	got("Wednesday 08:30 Moscow", 3, 2, 2, 2)
	// And back east: Wednesday is done, Thursday comes at her 08:30.
	w.advanceTo(time.Date(2026, 11, 25, 9, 0, 0, 0, msk))
	if err := d.Reload(inVlat()); err != nil {
		t.Fatal(err)
	}
	got("Wednesday after the move east", 0, 2, 2, 2)
	w.advanceTo(time.Date(2026, 11, 26, 8, 30, 0, 0, vlat))
	got("Thursday 08:30 Vladivostok", 1, 2, 3, 2)
	w.advanceTo(time.Date(2026, 11, 26, 8, 30, 0, 0, msk))
	got("Thursday 08:30 Moscow", 2, 3, 3, 3)
}

// The first start after an upgrade: the store holds the one record of
// before, the top-level slot at which everyone got Tuesday's summary. Maria,
// now in New York, got hers at 00:30 her time, so none comes at her 08:30
// that day; the next day hers comes at her 08:30. An account added later by
// a reload does not inherit that old record, even before the team summary
// replaced it: it gets no late summary on its first day.
func TestSummaryUpgradeFromOneRecord(t *testing.T) {
	msk, ny, vlat := zone(t, "Europe/Moscow"), zone(t, "America/New_York"), zone(t, "Asia/Vladivostok")
	start := time.Date(2026, 11, 24, 10, 0, 0, 0, msk)
	maria, olga := "maria@seller.test", "olga@seller.test"
	w := newWorld(t, start, seller, maria, olga, client, boss)
	cfg := w.zonedConfig(summaryConfig, map[string]string{maria: `time_zone = "America/New_York"`}, seller, maria)
	db, err := store.Open(filepath.Join(w.dir, daemon.DBFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutMeta("summary/last", []byte(time.Date(2026, 11, 24, 8, 30, 0, 0, msk).UTC().Format(time.RFC3339Nano))); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	d, _ := w.run(cfg)
	got := w.summaryCount(seller, maria, olga, boss)
	got("upgraded on Tuesday at 10:00 Moscow", 0, 0, 0, 0, 0)
	w.advanceTo(time.Date(2026, 11, 24, 12, 0, 0, 0, ny))
	got("Tuesday noon in New York", 0, 0, 0, 0, 0)
	// Olga joins, in Vladivostok, once her Wednesday 08:30 has passed but
	// before anything was sent that day.
	w.advanceTo(time.Date(2026, 11, 25, 12, 0, 0, 0, vlat))
	if err := d.Reload(w.zonedConfig(summaryConfig, map[string]string{maria: `time_zone = "America/New_York"`, olga: `time_zone = "Asia/Vladivostok"`}, seller, maria, olga)); err != nil {
		t.Fatal(err)
	}
	got("Olga joins after her Wednesday 08:30", 0, 0, 0, 0, 0)
	w.advanceTo(time.Date(2026, 11, 25, 8, 30, 0, 0, msk))
	got("Wednesday 08:30 Moscow", 2, 1, 0, 0, 1)
	if body := w.smtpTo(seller)[0].rec.Body; !strings.Contains(body, "ANSWERS SINCE Tue 24 Nov 08:30") {
		t.Errorf("Ivan's first summary does not start at the old record:\n%s", body)
	}
	w.advanceTo(time.Date(2026, 11, 25, 8, 30, 0, 0, ny))
	got("Wednesday 08:30 New York", 1, 1, 1, 0, 1)
	w.advanceTo(time.Date(2026, 11, 26, 8, 30, 0, 0, vlat))
	got("Thursday 08:30 Vladivostok", 1, 1, 1, 1, 1)
}

// putMeta writes records into the world's store before a daemon opens it.
func (w *world) putMeta(kv map[string]string) {
	w.t.Helper()
	db, err := store.Open(filepath.Join(w.dir, daemon.DBFile), store.Options{})
	if err != nil {
		w.t.Fatal(err)
	}
	for k, v := range kv {
		if err := db.PutMeta(k, []byte(v)); err != nil {
			w.t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		w.t.Fatal(err)
	}
}

// meta reads a record from the world's store while no daemon has it open
// (the error's text when there is none).
func (w *world) meta(key string) string {
	w.t.Helper()
	db, err := store.Open(filepath.Join(w.dir, daemon.DBFile), store.Options{})
	if err != nil {
		w.t.Fatal(err)
	}
	defer db.Close()
	v, err := db.Meta(key)
	if err != nil {
		return err.Error()
	}
	return string(v)
}

// blackhole is an address that accepts TCP connections and never says a
// word: an SMTP server that hangs.
func blackhole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// smtpFor is cfg (just written by w.config) with addr's account sending
// through the SMTP server at hostport.
func (w *world) smtpFor(cfg *config.Config, addr, hostport string) *config.Config {
	w.t.Helper()
	path := filepath.Join(w.dir, "followupd.toml")
	b, err := os.ReadFile(path)
	if err != nil {
		w.t.Fatal(err)
	}
	s := string(b)
	at := strings.Index(s, fmt.Sprintf("address = %q\n", addr))
	line := strings.Index(s[max(at, 0):], "smtp = {")
	if at < 0 || line < 0 {
		w.t.Fatalf("no SMTP server of %s in the config", addr)
	}
	line += at
	end := line + strings.Index(s[line:], "\n")
	host, port := splitAddr(hostport)
	s = s[:line] + fmt.Sprintf("smtp = { host = %q, port = %s, security = \"none\" }", host, port) + s[end:]
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		w.t.Fatal(err)
	}
	if cfg, err = config.Load(path); err != nil {
		w.t.Fatal(err)
	}
	return cfg
}

// The first start after an upgrade, where the single record's top-level
// time falls on another date in the sender's zone: her summaries follow
// that send's date in her zone, so neither is her next day lost nor does
// she get two on one local day.
func TestSummaryUpgradeAcrossDates(t *testing.T) {
	maria := "maria@seller.test"
	t.Run("Moscow to Chicago", func(t *testing.T) {
		msk, chi := zone(t, "Europe/Moscow"), zone(t, "America/Chicago")
		// The last old summary: Tue 08:30 Moscow, Mon 23:30 in Chicago.
		w := newWorld(t, time.Date(2026, 11, 24, 10, 0, 0, 0, msk), seller, maria, client, boss)
		w.putMeta(map[string]string{"summary/last": time.Date(2026, 11, 24, 8, 30, 0, 0, msk).UTC().Format(time.RFC3339)})
		w.run(w.zonedConfig(summaryConfig, map[string]string{maria: `time_zone = "America/Chicago"`}, seller, maria))
		got := w.summaryCount(seller, maria, boss)
		got("upgraded Tue 10:00 Moscow, 01:00 Chicago", 0, 0, 0, 0)
		w.advanceTo(time.Date(2026, 11, 24, 8, 30, 0, 0, chi))
		got("Tuesday 08:30 Chicago: Maria's Tuesday", 1, 0, 1, 0)
		w.advanceTo(time.Date(2026, 11, 25, 8, 30, 0, 0, msk))
		got("Wednesday 08:30 Moscow", 2, 1, 1, 1)
	})
	t.Run("Honolulu to Vladivostok", func(t *testing.T) {
		hnl, vlat := zone(t, "Pacific/Honolulu"), zone(t, "Asia/Vladivostok")
		// The last old summary: Mon 08:30 Honolulu, Tue 04:30 in
		// Vladivostok. The upgrade: Tue 09:00 there, Mon 13:00 Honolulu.
		w := newWorld(t, time.Date(2026, 11, 24, 9, 0, 0, 0, vlat).In(hnl), seller, maria, client, boss)
		w.putMeta(map[string]string{"summary/last": time.Date(2026, 11, 23, 8, 30, 0, 0, hnl).UTC().Format(time.RFC3339)})
		w.run(w.zonedConfig(summaryConfig, map[string]string{maria: `time_zone = "Asia/Vladivostok"`}, seller, maria))
		got := w.summaryCount(seller, maria, boss)
		got("upgraded Tue 09:00 Vladivostok: she had Tuesday's at 04:30", 0, 0, 0, 0)
		w.advanceTo(time.Date(2026, 11, 24, 8, 30, 0, 0, hnl))
		got("Tuesday 08:30 Honolulu", 2, 1, 0, 1)
		w.advanceTo(time.Date(2026, 11, 25, 8, 30, 0, 0, vlat))
		got("Wednesday 08:30 Vladivostok", 1, 1, 1, 1)
	})
}

// A reload that moves Maria's account to a zone where her last summary's
// send falls on another date: the next follows that date in the new zone.
func TestSummaryReloadAcrossDates(t *testing.T) {
	maria := "maria@seller.test"
	msk, vlat, la := zone(t, "Europe/Moscow"), zone(t, "Asia/Vladivostok"), zone(t, "America/Los_Angeles")
	in := func(w *world, tz string) *config.Config {
		return w.zonedConfig(summaryConfig, map[string]string{maria: fmt.Sprintf("time_zone = %q", tz)}, seller, maria)
	}
	t.Run("Vladivostok to Los Angeles", func(t *testing.T) {
		w := newWorld(t, monday(t), seller, maria, client, boss)
		d, _ := w.run(in(w, "Asia/Vladivostok"))
		got := w.summaryCount(seller, maria, boss)
		w.advanceTo(time.Date(2026, 11, 24, 8, 30, 0, 0, vlat)) // Mon 14:30 in LA
		got("Tuesday 08:30 Vladivostok", 1, 0, 1, 0)
		w.advanceTo(time.Date(2026, 11, 23, 15, 0, 0, 0, la))
		if err := d.Reload(in(w, "America/Los_Angeles")); err != nil {
			t.Fatal(err)
		}
		got("moved to LA on Monday 15:00 there", 0, 0, 1, 0)
		w.advanceTo(time.Date(2026, 11, 24, 8, 30, 0, 0, msk))
		got("Tuesday 08:30 Moscow", 2, 1, 1, 1)
		w.advanceTo(time.Date(2026, 11, 24, 8, 30, 0, 0, la))
		got("Tuesday 08:30 LA: her Tuesday", 1, 1, 2, 1)
		w.advanceTo(time.Date(2026, 11, 25, 8, 30, 0, 0, la))
		got("Wednesday 08:30 LA", 3, 2, 3, 2)
	})
	t.Run("Los Angeles to Vladivostok", func(t *testing.T) {
		w := newWorld(t, monday(t), seller, maria, client, boss)
		d, _ := w.run(in(w, "America/Los_Angeles"))
		got := w.summaryCount(seller, maria, boss)
		w.advanceTo(time.Date(2026, 11, 23, 8, 30, 0, 0, la)) // Tue 02:30 in Vladivostok
		got("Monday 08:30 LA", 1, 0, 1, 0)
		w.advanceTo(time.Date(2026, 11, 24, 9, 0, 0, 0, vlat))
		if err := d.Reload(in(w, "Asia/Vladivostok")); err != nil {
			t.Fatal(err)
		}
		got("moved to Vladivostok on Tuesday 09:00 there: she had Tuesday's", 0, 0, 1, 0)
		w.advanceTo(time.Date(2026, 11, 24, 8, 30, 0, 0, msk))
		got("Tuesday 08:30 Moscow", 2, 1, 1, 1)
		w.advanceTo(time.Date(2026, 11, 25, 8, 30, 0, 0, vlat))
		got("Wednesday 08:30 Vladivostok", 1, 1, 2, 1)
	})
}

// A record dated ahead (the host's clock ran ahead, then was set back)
// counts as today's, also after a restart: the summaries go on tomorrow,
// not next June.
func TestSummaryRecordAhead(t *testing.T) {
	msk := zone(t, "Europe/Moscow")
	w := newWorld(t, time.Date(2026, 11, 24, 10, 0, 0, 0, msk), seller, client, boss)
	w.putMeta(map[string]string{"summary/last/" + seller: "2027-06-01 2027-06-01T05:30:00Z"})
	_, stop := w.run(w.config(summaryConfig, seller))
	got := w.summaryCount(seller, boss)
	got("Tuesday 10:00", 0, 0, 0)
	stop()
	w.advanceTo(time.Date(2026, 11, 25, 7, 0, 0, 0, msk))
	w.run(w.config(summaryConfig, seller))
	w.advanceTo(time.Date(2026, 11, 25, 8, 30, 0, 0, msk))
	got("Wednesday 08:30, after a restart", 2, 1, 1)
	if body := w.smtpTo(seller)[0].rec.Body; strings.Contains(body, "2027") {
		t.Errorf("Ivan's summary starts at the record's date:\n%s", body)
	}
}

// A summary the server refuses is not recorded: it is tried again
// summaryRetry (15 minutes) later, the others are not sent again.
func TestSummaryFailedIsRetried(t *testing.T) {
	msk := zone(t, "Europe/Moscow")
	maria := "maria@seller.test"
	w := newWorld(t, monday(t), seller, maria, client, boss)
	cfg := w.config(summaryConfig, seller, maria)
	_, stop := w.run(cfg)
	got := w.summaryCount(seller, maria, boss)
	w.smtp.FailRecipient(maria, 451, "4.3.0", "mailbox busy")
	w.advanceTo(time.Date(2026, 11, 24, 8, 30, 0, 0, msk))
	got("Tuesday 08:30, Maria's refused", 2, 1, 0, 1)
	w.smtp.FailRecipient(maria, 0, "", "")
	w.advanceTo(time.Date(2026, 11, 24, 8, 44, 0, 0, msk))
	got("08:44", 0, 1, 0, 1)
	w.advanceTo(time.Date(2026, 11, 24, 8, 45, 0, 0, msk))
	got("08:45: Maria's again", 1, 1, 1, 1)
	stop()
	w.advanceTo(time.Date(2026, 11, 24, 10, 0, 0, 0, msk))
	w.run(cfg)
	got("restart the same day", 0, 1, 1, 1)
}

// Each summary is recorded as soon as the server took it: stopped while
// Maria's hangs (her server never answers), Ivan's is recorded, and hers,
// cancelled at shutdown, and the team's, never tried, are not. Restarted
// the same day, those two are caught up, Ivan's is not sent again.
func TestSummaryRecordedOneByOne(t *testing.T) {
	msk := zone(t, "Europe/Moscow")
	maria := "maria@seller.test"
	w := newWorld(t, monday(t), seller, maria, client, boss)
	hang := blackhole(t)
	d, stop := w.runWith(w.smtpFor(w.config(summaryConfig, seller, maria), maria, hang), 100*time.Millisecond)
	got := w.summaryCount(seller, maria, boss)
	w.advanceTo(time.Date(2026, 11, 24, 8, 30, 0, 0, msk))
	if ev := w.expect("summary", ""); ev.Account != seller {
		t.Fatalf("first summary through %s, want %s", ev.Account, seller)
	}
	rec := func(key string) string {
		v, err := d.Store().Meta(key)
		if err != nil {
			return err.Error()
		}
		return string(v)
	}
	if ivan := rec("summary/last/" + seller); !strings.HasPrefix(ivan, "2026-11-24 ") {
		t.Errorf("Ivan's record while Maria's summary hangs: %q, want Tuesday's", ivan)
	}
	stop()
	for _, key := range []string{"summary/last/" + maria, "summary/last"} {
		if v := w.meta(key); strings.HasPrefix(v, "2026-11-24 ") {
			t.Errorf("%s recorded as sent: %q", key, v)
		}
	}
	w.advanceTo(time.Date(2026, 11, 24, 10, 0, 0, 0, msk))
	w.run(w.config(summaryConfig, seller, maria))
	got("restart the same day", 2, 1, 1, 1)
}

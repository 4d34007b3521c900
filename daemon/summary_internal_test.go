package daemon

import (
	"testing"
	"time"

	"followupd/calendar"
)

func loadLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func day(y int, m time.Month, d int) calendar.Day { return calendar.Day{Year: y, Month: m, Day: d} }

// planSummary in Vladivostok at 08:30, weekends and 25 Nov 2026 off: the
// record decides the day, never the instant, and only today catches up.
func TestPlanSummary(t *testing.T) {
	vlat := loadLoc(t, "Asia/Vladivostok")
	cal, err := calendar.New(vlat, "", []calendar.Day{day(2026, 11, 25)}, nil, calendar.Window{})
	if err != nil {
		t.Fatal(err)
	}
	job := summaryJob{account: "maria", cal: cal, at: 8*60 + 30}
	at := func(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, vlat) }
	for _, tc := range []struct {
		name    string
		rec     calendar.Day
		now     time.Time
		wantDay calendar.Day
		want    time.Time
	}{
		{"before today's time", day(2026, 11, 23), at(24, 8, 0), day(2026, 11, 24), at(24, 8, 30)},
		{"at today's time", day(2026, 11, 23), at(24, 8, 30), day(2026, 11, 24), at(24, 8, 30)},
		{"late start catches up", day(2026, 11, 23), at(24, 11, 0), day(2026, 11, 24), at(24, 11, 0)},
		{"days down: only today", day(2026, 11, 16), at(24, 11, 0), day(2026, 11, 24), at(24, 11, 0)},
		{"today sent", day(2026, 11, 24), at(24, 11, 0), day(2026, 11, 26), at(26, 8, 30)},
		{"today sent before its time", day(2026, 11, 24), at(24, 7, 0), day(2026, 11, 26), at(26, 8, 30)},
		{"holiday: no catching up", day(2026, 11, 24), at(25, 11, 0), day(2026, 11, 26), at(26, 8, 30)},
		{"Friday sent: Monday", day(2026, 11, 27), at(27, 9, 0), day(2026, 11, 30), at(30, 8, 30)},
		{"Saturday: Monday", day(2026, 11, 27), at(28, 9, 0), day(2026, 11, 30), at(30, 8, 30)},
		// Dated ahead (the clock ran ahead and was set back): today's.
		{"record of tomorrow: taken as today's", day(2026, 11, 24), at(23, 20, 0), day(2026, 11, 24), at(24, 8, 30)},
		{"record of next June: taken as today's", day(2027, 6, 1), at(24, 8, 0), day(2026, 11, 26), at(26, 8, 30)},
		{"record of next June, today's time passed", day(2027, 6, 1), at(24, 11, 0), day(2026, 11, 26), at(26, 8, 30)},
	} {
		got := planSummary(job, summaryRecord{Day: tc.rec}, tc.now)
		if got.day != tc.wantDay || !got.at.Equal(tc.want) {
			t.Errorf("%s: planned %s at %s, want %s at %s", tc.name, got.day, got.at.In(vlat), tc.wantDay, tc.want)
		}
	}
}

// A record made in another zone is read in the job's from the instant it
// was made: a summary went out on that instant's local date there, a day
// passed over is the last whose time had passed there. The plan that
// follows neither sends twice on one local day nor skips one. All at
// 08:30, weekends off.
func TestSummaryRecordIn(t *testing.T) {
	msk, chi, hnl := loadLoc(t, "Europe/Moscow"), loadLoc(t, "America/Chicago"), loadLoc(t, "Pacific/Honolulu")
	vlat, la := loadLoc(t, "Asia/Vladivostok"), loadLoc(t, "America/Los_Angeles")
	job := func(loc *time.Location) summaryJob {
		cal, err := calendar.New(loc, "", nil, nil, calendar.Window{})
		if err != nil {
			t.Fatal(err)
		}
		return summaryJob{account: "maria", cal: cal, at: 8*60 + 30}
	}
	nov := func(loc *time.Location, d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, loc) }
	sent := func(loc *time.Location, d int) summaryRecord { // sent at 08:30 on d in loc
		return summaryRecord{Day: day(2026, 11, d), Slot: nov(loc, d, 8, 30), At: nov(loc, d, 8, 30), Zone: loc.String()}
	}
	legacy := func(loc *time.Location, d int) summaryRecord { // the single record of before
		return summaryRecord{Slot: nov(loc, d, 8, 30), At: nov(loc, d, 8, 30)}
	}
	for _, tc := range []struct {
		name string
		rec  summaryRecord
		job  summaryJob
		want calendar.Day
		now  time.Time
		next time.Time // the plan at now
	}{
		// Upgrade: Moscow's Tue 08:30 was Mon 23:30 in Chicago, whose
		// Tuesday is still to come.
		{"upgrade, Moscow to Chicago", legacy(msk, 24), job(chi), day(2026, 11, 23), nov(chi, 24, 1, 0), nov(chi, 24, 8, 30)},
		{"upgrade, Moscow to Moscow", legacy(msk, 24), job(msk), day(2026, 11, 24), nov(msk, 24, 10, 0), nov(msk, 25, 8, 30)},
		// Upgrade: Honolulu's Mon 08:30 was Tue 04:30 in Vladivostok,
		// which had its Tuesday summary then.
		{"upgrade, Honolulu to Vladivostok", legacy(hnl, 23), job(vlat), day(2026, 11, 24), nov(vlat, 24, 9, 0), nov(vlat, 25, 8, 30)},
		// Reloads: Vladivostok's Wed 08:30 is Tue 14:30 in Los Angeles,
		// whose Wednesday is still to come; LA's Tue 08:30 is Wed 02:30 in
		// Vladivostok, whose Wednesday had its summary.
		{"reload, Vladivostok to LA", sent(vlat, 25), job(la), day(2026, 11, 24), nov(la, 24, 15, 0), nov(la, 25, 8, 30)},
		{"reload, LA to Vladivostok", sent(la, 24), job(vlat), day(2026, 11, 25), nov(vlat, 25, 9, 0), nov(vlat, 26, 8, 30)},
		{"same zone: as it is", sent(vlat, 25), job(vlat), day(2026, 11, 25), nov(vlat, 25, 9, 0), nov(vlat, 26, 8, 30)},
		// A day passed over at Tue 10:00 Moscow (a first plan): Mon 23:00
		// in LA, whose Tuesday is to come; Tue 17:00 in Vladivostok, whose
		// Tuesday's time had passed.
		{"passed over, Moscow to LA", summaryRecord{Day: day(2026, 11, 24), At: nov(msk, 24, 10, 0), Zone: "Europe/Moscow"}, job(la), day(2026, 11, 23), nov(la, 24, 0, 30), nov(la, 24, 8, 30)},
		{"passed over, Moscow to Vladivostok", summaryRecord{Day: day(2026, 11, 24), At: nov(msk, 24, 10, 0), Zone: "Europe/Moscow"}, job(vlat), day(2026, 11, 24), nov(vlat, 24, 18, 0), nov(vlat, 25, 8, 30)},
		// Written before the instant was kept: taken as it is.
		{"no instant", summaryRecord{Day: day(2026, 11, 25), Slot: nov(vlat, 25, 8, 30)}, job(la), day(2026, 11, 25), nov(la, 25, 9, 0), nov(la, 26, 8, 30)},
	} {
		got := tc.rec.in(tc.job)
		if got.Day != tc.want || got.Zone != tc.job.zone() && !tc.rec.At.IsZero() {
			t.Errorf("%s: read as %s in %s, want %s in %s", tc.name, got.Day, got.Zone, tc.want, tc.job.zone())
		}
		if again := got.in(tc.job); again.String() != got.String() {
			t.Errorf("%s: read again: %s, was %s", tc.name, again, got)
		}
		if next := planSummary(tc.job, tc.rec, tc.now); !next.at.Equal(tc.next) {
			t.Errorf("%s: at %s planned %s, want %s", tc.name, tc.now, next.at.In(tc.job.cal.Location()), tc.next.In(tc.job.cal.Location()))
		}
	}
}

func TestLastSlotDay(t *testing.T) {
	msk := loadLoc(t, "Europe/Moscow")
	cal, err := calendar.New(msk, "", nil, nil, calendar.Window{})
	if err != nil {
		t.Fatal(err)
	}
	job := summaryJob{cal: cal, at: 8*60 + 30}
	for _, tc := range []struct {
		now  time.Time
		want calendar.Day
	}{
		{time.Date(2026, 11, 24, 8, 29, 0, 0, msk), day(2026, 11, 23)},
		{time.Date(2026, 11, 24, 8, 30, 0, 0, msk), day(2026, 11, 24)},
		{time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC), day(2026, 11, 23)}, // 04:00 Moscow
		{time.Date(2027, 1, 1, 3, 0, 0, 0, msk), day(2026, 12, 31)},
	} {
		if got := lastSlotDay(job, tc.now); got != tc.want {
			t.Errorf("lastSlotDay(%s) = %s, want %s", tc.now, got, tc.want)
		}
	}
}

func TestSummaryRecord(t *testing.T) {
	msk := loadLoc(t, "Europe/Moscow")
	slot := time.Date(2026, 11, 24, 8, 30, 0, 0, msk)
	made := slot.Add(2 * time.Second)
	for _, tc := range []struct {
		in         string
		want       summaryRecord
		legacy, ok bool
	}{
		{"2026-11-24 2026-11-24T05:30:00Z 2026-11-24T05:30:02Z Europe/Moscow", summaryRecord{day(2026, 11, 24), slot, made, "Europe/Moscow"}, false, true},
		{"2026-11-24 - 2026-11-24T05:30:02Z Europe/Moscow", summaryRecord{Day: day(2026, 11, 24), At: made, Zone: "Europe/Moscow"}, false, true},
		{"2026-11-24 2026-11-24T05:30:00Z 2026-11-24T05:30:02Z -", summaryRecord{Day: day(2026, 11, 24), Slot: slot, At: made}, false, true},
		// Written before the instant and zone were kept.
		{"2026-11-24 2026-11-24T05:30:00Z", summaryRecord{Day: day(2026, 11, 24), Slot: slot}, false, true},
		{"2026-11-24", summaryRecord{Day: day(2026, 11, 24)}, false, true},
		// Before per-account schedules: a send at that time, zone unknown.
		{"2026-11-24T05:30:00Z", summaryRecord{Slot: slot, At: slot}, true, true},
		{"2026-11-23T21:30:00.5Z", summaryRecord{Slot: slot.Add(-8*time.Hour + 500*time.Millisecond), At: slot.Add(-8*time.Hour + 500*time.Millisecond)}, true, true},
		{"", summaryRecord{}, false, false},
		{"24.11.2026", summaryRecord{}, false, false},
		{"2026-11-24 08:30", summaryRecord{}, false, false},
		{"2026-11-24 2026-11-24T05:30:00Z Europe/Moscow", summaryRecord{}, false, false},
		{"2026-11-24 2026-11-24T05:30:00Z tomorrow Europe/Moscow", summaryRecord{}, false, false},
	} {
		got, legacy, err := parseSummaryRecord(tc.in)
		if (err == nil) != tc.ok || legacy != tc.legacy || got.Day != tc.want.Day || !got.Slot.Equal(tc.want.Slot) || !got.At.Equal(tc.want.At) || got.Zone != tc.want.Zone {
			t.Errorf("parseSummaryRecord(%q) = %v, legacy %t, %v; want %v, legacy %t, ok %t", tc.in, got, legacy, err, tc.want, tc.legacy, tc.ok)
		}
		if err == nil && !legacy {
			if got.String() != tc.in {
				t.Errorf("%q is written back as %q", tc.in, got.String())
			}
		}
	}
}

// A send is recorded for the local day it goes out on. A due that comes up
// only on a later local day (a suspended host, a retry past midnight) is
// planned again as at a start: it never goes out for a day that has
// passed, to be followed by that day's own.
func TestSummarySentRecord(t *testing.T) {
	msk := loadLoc(t, "Europe/Moscow")
	cal, err := calendar.New(msk, "", nil, nil, calendar.Window{})
	if err != nil {
		t.Fatal(err)
	}
	job := summaryJob{cal: cal, at: 8*60 + 30}
	at := func(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, msk) }
	mon := summaryRecord{Day: day(2026, 11, 23), Slot: at(23, 8, 30), At: at(23, 8, 30), Zone: "Europe/Moscow"}
	tue := summaryDue{job: job, rec: mon, day: day(2026, 11, 24), at: at(24, 8, 30)}
	fri := summaryDue{job: job, rec: mon, day: day(2026, 11, 27), at: at(27, 8, 30)}
	for _, tc := range []struct {
		name     string
		due      summaryDue
		now      time.Time
		sends    bool
		want     summaryRecord // when it sends
		nextPlan time.Time
	}{
		{"on time", tue, at(24, 8, 30), true, summaryRecord{day(2026, 11, 24), at(24, 8, 30), at(24, 8, 30), "Europe/Moscow"}, at(25, 8, 30)},
		{"caught up", summaryDue{job: job, rec: mon, day: day(2026, 11, 24), at: at(24, 10, 0)}, at(24, 10, 0), true, summaryRecord{day(2026, 11, 24), at(24, 10, 0), at(24, 10, 0), "Europe/Moscow"}, at(25, 8, 30)},
		{"woke late the same day", tue, at(24, 23, 0), true, summaryRecord{day(2026, 11, 24), at(24, 8, 30), at(24, 23, 0), "Europe/Moscow"}, at(25, 8, 30)},
		{"retry the same day", summaryDue{job: job, rec: mon, day: day(2026, 11, 24), at: at(24, 8, 45)}, at(24, 8, 45), true, summaryRecord{day(2026, 11, 24), at(24, 8, 45), at(24, 8, 45), "Europe/Moscow"}, at(25, 8, 30)},
		{"woke a day late: today's, caught up", tue, at(25, 9, 0), true, summaryRecord{day(2026, 11, 25), at(25, 9, 0), at(25, 9, 0), "Europe/Moscow"}, at(26, 8, 30)},
		{"woke the next day before its time: at its time", tue, at(25, 8, 0), false, summaryRecord{}, at(25, 8, 30)},
		{"retry past midnight: at today's time", summaryDue{job: job, rec: mon, day: day(2026, 11, 24), at: at(25, 0, 10)}, at(25, 0, 10), false, summaryRecord{}, at(25, 8, 30)},
		{"woke on Saturday: Monday", fri, at(28, 10, 0), false, summaryRecord{}, at(30, 8, 30)},
	} {
		cur := tc.due.current(tc.now)
		if sends := !cur.at.IsZero() && !tc.now.Before(cur.at); sends != tc.sends {
			t.Errorf("%s: sends %t (due %s at %s), want %t", tc.name, sends, cur.day, cur.at, tc.sends)
			continue
		}
		if !tc.sends {
			if !cur.at.Equal(tc.nextPlan) {
				t.Errorf("%s: planned %s, want %s", tc.name, cur.at, tc.nextPlan)
			}
			continue
		}
		rec := cur.sent(tc.now)
		if rec.String() != tc.want.String() {
			t.Errorf("%s: recorded %v, want %v", tc.name, rec, tc.want)
		}
		if next := planSummary(job, rec, tc.now); !next.at.Equal(tc.nextPlan) {
			t.Errorf("%s: next at %s, want %s", tc.name, next.at, tc.nextPlan)
		}
	}
}

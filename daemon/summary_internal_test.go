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
		{"today sent, before its time (zone moved west)", day(2026, 11, 24), at(24, 7, 0), day(2026, 11, 26), at(26, 8, 30)},
		{"tomorrow sent (zone moved east)", day(2026, 11, 24), at(23, 20, 0), day(2026, 11, 26), at(26, 8, 30)},
		{"holiday: no catching up", day(2026, 11, 24), at(25, 11, 0), day(2026, 11, 26), at(26, 8, 30)},
		{"Friday sent: Monday", day(2026, 11, 27), at(27, 9, 0), day(2026, 11, 30), at(30, 8, 30)},
		{"Saturday: Monday", day(2026, 11, 27), at(28, 9, 0), day(2026, 11, 30), at(30, 8, 30)},
	} {
		got := planSummary(job, summaryRecord{Day: tc.rec}, tc.now)
		if got.day != tc.wantDay || !got.at.Equal(tc.want) {
			t.Errorf("%s: planned %s at %s, want %s at %s", tc.name, got.day, got.at.In(vlat), tc.wantDay, tc.want)
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
	for _, tc := range []struct {
		in         string
		want       summaryRecord
		legacy, ok bool
	}{
		{"2026-11-24 2026-11-24T05:30:00Z", summaryRecord{day(2026, 11, 24), slot}, false, true},
		{"2026-11-24", summaryRecord{Day: day(2026, 11, 24)}, false, true},
		// Before per-account schedules: the day is the top-level zone's.
		{"2026-11-24T05:30:00Z", summaryRecord{day(2026, 11, 24), slot}, true, true},
		{"2026-11-23T21:30:00.5Z", summaryRecord{day(2026, 11, 24), slot.Add(-8*time.Hour + 500*time.Millisecond)}, true, true},
		{"", summaryRecord{}, false, false},
		{"24.11.2026", summaryRecord{}, false, false},
		{"2026-11-24 08:30", summaryRecord{}, false, false},
	} {
		got, legacy, err := parseSummaryRecord(tc.in, msk)
		if (err == nil) != tc.ok || legacy != tc.legacy || got.Day != tc.want.Day || !got.Slot.Equal(tc.want.Slot) {
			t.Errorf("parseSummaryRecord(%q) = %v, legacy %t, %v; want %v, legacy %t, ok %t", tc.in, got, legacy, err, tc.want, tc.legacy, tc.ok)
		}
		if err == nil && !legacy {
			if again, _, err := parseSummaryRecord(got.String(), msk); err != nil || again.Day != got.Day || !again.Slot.Equal(got.Slot) {
				t.Errorf("%q: %q does not read back: %v, %v", tc.in, got.String(), again, err)
			}
		}
	}
}

// A send is recorded for its day, or for a later one whose time has also
// passed when the send came late; either way the next plan is a later day.
func TestSummarySentRecord(t *testing.T) {
	msk := loadLoc(t, "Europe/Moscow")
	cal, err := calendar.New(msk, "", nil, nil, calendar.Window{})
	if err != nil {
		t.Fatal(err)
	}
	job := summaryJob{cal: cal, at: 8*60 + 30}
	at := func(d, h, m int) time.Time { return time.Date(2026, 11, d, h, m, 0, 0, msk) }
	for _, tc := range []struct {
		name     string
		due      summaryDue
		now      time.Time
		want     summaryRecord
		nextPlan time.Time
	}{
		{"on time", summaryDue{job: job, day: day(2026, 11, 24), at: at(24, 8, 30)}, at(24, 8, 30), summaryRecord{day(2026, 11, 24), at(24, 8, 30)}, at(25, 8, 30)},
		{"caught up", summaryDue{job: job, day: day(2026, 11, 24), at: at(24, 10, 0)}, at(24, 10, 0), summaryRecord{day(2026, 11, 24), at(24, 10, 0)}, at(25, 8, 30)},
		{"woke a day late", summaryDue{job: job, day: day(2026, 11, 24), at: at(24, 8, 30)}, at(25, 9, 0), summaryRecord{day(2026, 11, 25), at(24, 8, 30)}, at(26, 8, 30)},
		{"woke late, before the next time", summaryDue{job: job, day: day(2026, 11, 24), at: at(24, 8, 30)}, at(25, 8, 0), summaryRecord{day(2026, 11, 24), at(24, 8, 30)}, at(25, 8, 30)},
	} {
		rec := tc.due.sent(tc.now)
		if rec.Day != tc.want.Day || !rec.Slot.Equal(tc.want.Slot) {
			t.Errorf("%s: recorded %v, want %v", tc.name, rec, tc.want)
		}
		if next := planSummary(job, rec, tc.now); !next.at.Equal(tc.nextPlan) {
			t.Errorf("%s: next at %s, want %s", tc.name, next.at, tc.nextPlan)
		}
	}
}

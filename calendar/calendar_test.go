package calendar

import (
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load zone %q: %v", name, err)
	}
	return loc
}

func mustNew(t *testing.T, loc *time.Location, country string, holidays, workdays []Day, w Window) *Calendar {
	t.Helper()
	c, err := New(loc, country, holidays, workdays, w)
	if err != nil {
		t.Fatalf("New(%v, %q): %v", loc, country, err)
	}
	return c
}

// at builds a local wall-clock time in loc.
func wall(loc *time.Location, y int, m time.Month, d, hh, mm int) time.Time {
	return time.Date(y, m, d, hh, mm, 0, 0, loc)
}

var nineToSix = Window{Start: 9 * 60, End: 18 * 60}

// Russia 2025/2026 as a config would describe it: New Year week extended by
// decree (31 Dec 2025 and 9 Jan 2026 off), Saturday 1 Nov 2025 worked in
// exchange for Monday 3 Nov.
var (
	ruHolidays = []Day{{2025, 12, 31}, {2026, 1, 9}, {2025, 11, 3}}
	ruWorkdays = []Day{{2025, 11, 1}}
)

func TestAddBusinessDays(t *testing.T) {
	msk := mustLoc(t, "Europe/Moscow")
	ber := mustLoc(t, "Europe/Berlin")
	nyc := mustLoc(t, "America/New_York")
	lon := mustLoc(t, "Europe/London")
	ru := mustNew(t, msk, "ru", ruHolidays, ruWorkdays, nineToSix)
	ruPlain := mustNew(t, msk, "RU", nil, nil, Window{})
	de := mustNew(t, ber, "de", nil, nil, nineToSix)
	us := mustNew(t, nyc, "us", nil, nil, nineToSix)
	gb := mustNew(t, lon, "gb", nil, nil, nineToSix)
	weekends := mustNew(t, time.UTC, "", nil, nil, Window{})

	tests := []struct {
		name string
		c    *Calendar
		t    time.Time
		n    int
		want time.Time
	}{
		{"zero is identity", ru, wall(msk, 2026, 3, 7, 13, 0), 0, wall(msk, 2026, 3, 7, 13, 0)},
		{"negative is identity", ru, wall(msk, 2026, 3, 7, 13, 0), -3, wall(msk, 2026, 3, 7, 13, 0)},
		{"mid week", ru, wall(msk, 2026, 3, 2, 10, 15), 2, wall(msk, 2026, 3, 4, 10, 15)},
		{"friday over weekend", weekends, wall(time.UTC, 2026, 3, 13, 16, 0), 1, wall(time.UTC, 2026, 3, 16, 16, 0)},
		{"saturday counts from after its date", weekends, wall(time.UTC, 2026, 3, 14, 16, 0), 1, wall(time.UTC, 2026, 3, 16, 16, 0)},
		{"sunday plus two", weekends, wall(time.UTC, 2026, 3, 15, 8, 0), 2, wall(time.UTC, 2026, 3, 17, 8, 0)},
		// 8 March 2026 is a Sunday; rickar/cal observes it on Monday 9 March.
		{"ru womens day observed monday", ru, wall(msk, 2026, 3, 6, 10, 0), 1, wall(msk, 2026, 3, 10, 10, 0)},
		// 1-8 Jan by law, 31 Dec and 9 Jan by config, 10-11 Jan weekend.
		{"ru new year holidays", ru, wall(msk, 2025, 12, 30, 11, 0), 2, wall(msk, 2026, 1, 13, 11, 0)},
		{"ru new year holidays without decree", ruPlain, wall(msk, 2025, 12, 30, 11, 0), 1, wall(msk, 2025, 12, 31, 11, 0)},
		{"ru inside new year holidays", ruPlain, wall(msk, 2026, 1, 3, 11, 0), 1, wall(msk, 2026, 1, 9, 11, 0)},
		{"ru config holiday", ru, wall(msk, 2026, 1, 8, 11, 0), 1, wall(msk, 2026, 1, 12, 11, 0)},
		{"ru workday saturday", ru, wall(msk, 2025, 10, 31, 12, 0), 1, wall(msk, 2025, 11, 1, 12, 0)},
		// Sun 2 Nov, Mon 3 Nov (config), Tue 4 Nov Unity Day.
		{"ru after workday saturday", ru, wall(msk, 2025, 10, 31, 12, 0), 2, wall(msk, 2025, 11, 5, 12, 0)},
		{"input in another zone uses local date", ru, time.Date(2026, 3, 13, 22, 30, 0, 0, time.UTC), 1, wall(msk, 2026, 3, 16, 1, 30)},
		// Berlin springs forward on Sun 29 Mar 2026 and falls back on Sun 25 Oct 2026.
		{"berlin spring forward keeps wall time", de, wall(ber, 2026, 3, 27, 10, 0), 1, wall(ber, 2026, 3, 30, 10, 0)},
		{"berlin fall back keeps wall time", de, wall(ber, 2026, 10, 23, 10, 0), 1, wall(ber, 2026, 10, 26, 10, 0)},
		{"berlin good friday and easter monday", de, wall(ber, 2026, 4, 2, 9, 0), 1, wall(ber, 2026, 4, 7, 9, 0)},
		{"new york spring forward", us, wall(nyc, 2026, 3, 6, 9, 0), 1, wall(nyc, 2026, 3, 9, 9, 0)},
		{"new york fall back", us, wall(nyc, 2026, 10, 30, 9, 0), 1, wall(nyc, 2026, 11, 2, 9, 0)},
		{"us thanksgiving", us, wall(nyc, 2026, 11, 25, 14, 0), 1, wall(nyc, 2026, 11, 27, 14, 0)},
		// New Year's Day 2022 fell on a Saturday and was observed on Fri 31 Dec 2021.
		{"us new year observed in previous year", us, wall(nyc, 2021, 12, 30, 9, 0), 1, wall(nyc, 2022, 1, 3, 9, 0)},
		{"year end weekends only", weekends, wall(time.UTC, 2025, 12, 31, 9, 0), 2, wall(time.UTC, 2026, 1, 2, 9, 0)},
		// Christmas Fri 25 Dec 2026, Boxing Day Sat 26 observed Mon 28.
		{"gb christmas and boxing day", gb, wall(lon, 2026, 12, 24, 9, 0), 1, wall(lon, 2026, 12, 29, 9, 0)},
		{"gb year end", gb, wall(lon, 2026, 12, 31, 9, 0), 1, wall(lon, 2027, 1, 4, 9, 0)},
		{"many days", weekends, wall(time.UTC, 2026, 3, 2, 9, 0), 10, wall(time.UTC, 2026, 3, 16, 9, 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.c.AddBusinessDays(tc.t, tc.n)
			if !got.Equal(tc.want) {
				t.Errorf("AddBusinessDays(%v, %d) = %v, want %v", tc.t, tc.n, got, tc.want)
			}
			if got.Location() != tc.c.Location() && tc.n > 0 {
				t.Errorf("result zone %v, want %v", got.Location(), tc.c.Location())
			}
		})
	}
}

func TestDSTDurations(t *testing.T) {
	ber := mustLoc(t, "Europe/Berlin")
	c := mustNew(t, ber, "de", nil, nil, Window{})
	// Friday to Monday across the spring-forward night is one hour short.
	if d := c.AddBusinessDays(wall(ber, 2026, 3, 27, 10, 0), 1).Sub(wall(ber, 2026, 3, 27, 10, 0)); d != 71*time.Hour {
		t.Errorf("spring forward elapsed %v, want 71h", d)
	}
	if d := c.AddBusinessDays(wall(ber, 2026, 10, 23, 10, 0), 1).Sub(wall(ber, 2026, 10, 23, 10, 0)); d != 73*time.Hour {
		t.Errorf("fall back elapsed %v, want 73h", d)
	}
	// A wall time inside the gap on the target day: Sunday 29 Mar made a
	// working day, 02:30 does not exist there.
	gap := mustNew(t, ber, "", nil, []Day{{2026, 3, 29}}, Window{})
	got := gap.AddBusinessDays(wall(ber, 2026, 3, 28, 2, 30), 1)
	if DayOf(got, ber) != (Day{2026, 3, 29}) || got.Before(wall(ber, 2026, 3, 29, 3, 0)) {
		t.Errorf("gap wall time: got %v, want Sun 29 Mar at or after 03:00 CEST", got)
	}
}

func TestIsBusinessDayAndHoliday(t *testing.T) {
	msk := mustLoc(t, "Europe/Moscow")
	nyc := mustLoc(t, "America/New_York")
	ru := mustNew(t, msk, "ru", ruHolidays, ruWorkdays, nineToSix)
	us := mustNew(t, nyc, "us", nil, nil, nineToSix)
	tests := []struct {
		name     string
		c        *Calendar
		t        time.Time
		business bool
		holiday  string // "" = not a holiday
	}{
		{"ru plain monday", ru, wall(msk, 2026, 3, 2, 12, 0), true, ""},
		{"ru saturday", ru, wall(msk, 2026, 3, 7, 12, 0), false, ""},
		{"ru new year", ru, wall(msk, 2026, 1, 1, 12, 0), false, "Новый Год"},
		{"ru new year week", ru, wall(msk, 2026, 1, 5, 12, 0), false, "Новогодние каникулы"},
		{"ru christmas", ru, wall(msk, 2026, 1, 7, 12, 0), false, "Рождество Христово"},
		{"ru jan 8", ru, wall(msk, 2026, 1, 8, 12, 0), false, "Новогодние каникулы"},
		{"ru config holiday", ru, wall(msk, 2026, 1, 9, 12, 0), false, "holiday (config)"},
		{"ru config workday saturday", ru, wall(msk, 2025, 11, 1, 12, 0), true, ""},
		{"ru unity day", ru, wall(msk, 2025, 11, 4, 12, 0), false, "День народного едиснтва России"},
		{"ru local date not utc date", ru, time.Date(2026, 3, 6, 22, 30, 0, 0, time.UTC), false, ""},
		{"ru friday late evening utc", ru, time.Date(2026, 3, 13, 20, 30, 0, 0, time.UTC), true, ""},
		{"us observed new year", us, wall(nyc, 2021, 12, 31, 12, 0), false, "New Year's Day"},
		{"us independence day observed", us, wall(nyc, 2026, 7, 3, 12, 0), false, "Independence Day"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.c.IsBusinessDay(tc.t); got != tc.business {
				t.Errorf("IsBusinessDay(%v) = %v, want %v", tc.t, got, tc.business)
			}
			name, ok := tc.c.Holiday(tc.t)
			if ok != (tc.holiday != "") || name != tc.holiday {
				t.Errorf("Holiday(%v) = %q, %v; want %q", tc.t, name, ok, tc.holiday)
			}
		})
	}
}

// A configured workday beats a public holiday moved away by decree.
func TestWorkdayOverridesPublicHoliday(t *testing.T) {
	msk := mustLoc(t, "Europe/Moscow")
	c := mustNew(t, msk, "ru", nil, []Day{{2026, 1, 8}}, Window{})
	if !c.IsBusinessDay(wall(msk, 2026, 1, 8, 12, 0)) {
		t.Error("configured workday 8 Jan is not a business day")
	}
	if name, ok := c.Holiday(wall(msk, 2026, 1, 8, 12, 0)); ok {
		t.Errorf("configured workday reported as holiday %q", name)
	}
}

func TestNextOpen(t *testing.T) {
	msk := mustLoc(t, "Europe/Moscow")
	ru := mustNew(t, msk, "ru", ruHolidays, ruWorkdays, nineToSix)
	always := mustNew(t, msk, "ru", ruHolidays, ruWorkdays, Window{})
	lateEnd := mustNew(t, msk, "", nil, nil, Window{Start: 9 * 60, End: 24 * 60})
	tests := []struct {
		name string
		c    *Calendar
		t    time.Time
		want time.Time
	}{
		{"08:59 waits for 09:00", ru, wall(msk, 2026, 3, 2, 8, 59), wall(msk, 2026, 3, 2, 9, 0)},
		{"09:00 is open", ru, wall(msk, 2026, 3, 2, 9, 0), wall(msk, 2026, 3, 2, 9, 0)},
		{"17:59 is open", ru, wall(msk, 2026, 3, 2, 17, 59), wall(msk, 2026, 3, 2, 17, 59)},
		{"17:59:59 is open", ru, time.Date(2026, 3, 2, 17, 59, 59, 0, msk), time.Date(2026, 3, 2, 17, 59, 59, 0, msk)},
		{"18:00 is closed", ru, wall(msk, 2026, 3, 2, 18, 0), wall(msk, 2026, 3, 3, 9, 0)},
		{"midnight", ru, wall(msk, 2026, 3, 3, 0, 0), wall(msk, 2026, 3, 3, 9, 0)},
		{"friday evening to monday", ru, wall(msk, 2026, 3, 13, 19, 0), wall(msk, 2026, 3, 16, 9, 0)},
		{"friday evening to tuesday over holiday", ru, wall(msk, 2026, 3, 6, 18, 0), wall(msk, 2026, 3, 10, 9, 0)},
		{"saturday morning", ru, wall(msk, 2026, 3, 14, 10, 0), wall(msk, 2026, 3, 16, 9, 0)},
		{"new year holidays", ru, wall(msk, 2026, 1, 5, 10, 0), wall(msk, 2026, 1, 12, 9, 0)},
		{"workday saturday open", ru, wall(msk, 2025, 11, 1, 10, 0), wall(msk, 2025, 11, 1, 10, 0)},
		{"utc input, local window", ru, time.Date(2026, 3, 2, 5, 59, 0, 0, time.UTC), wall(msk, 2026, 3, 2, 9, 0)},
		{"always open business day", always, wall(msk, 2026, 3, 2, 3, 0), wall(msk, 2026, 3, 2, 3, 0)},
		{"always open weekend", always, wall(msk, 2026, 3, 14, 10, 0), wall(msk, 2026, 3, 16, 0, 0)},
		{"window to midnight", lateEnd, wall(msk, 2026, 3, 2, 23, 59), wall(msk, 2026, 3, 2, 23, 59)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.c.NextOpen(tc.t); !got.Equal(tc.want) {
				t.Errorf("NextOpen(%v) = %v, want %v", tc.t, got, tc.want)
			}
		})
	}
}

func TestNextOpenDST(t *testing.T) {
	ber := mustLoc(t, "Europe/Berlin")
	c := mustNew(t, ber, "de", nil, nil, nineToSix)
	// Friday before spring forward, after hours: Monday 09:00 CEST.
	if got, want := c.NextOpen(wall(ber, 2026, 3, 27, 18, 30)), wall(ber, 2026, 3, 30, 9, 0); !got.Equal(want) {
		t.Errorf("NextOpen = %v, want %v", got, want)
	}
	if _, off := c.NextOpen(wall(ber, 2026, 10, 23, 18, 30)).Zone(); off != 3600 {
		t.Errorf("after fall back the opening has offset %d, want 3600", off)
	}
}

func TestBusinessDaysBetween(t *testing.T) {
	msk := mustLoc(t, "Europe/Moscow")
	ru := mustNew(t, msk, "ru", ruHolidays, ruWorkdays, nineToSix)
	tests := []struct {
		name string
		a, b time.Time
		want int
	}{
		{"equal", wall(msk, 2026, 3, 2, 9, 0), wall(msk, 2026, 3, 2, 9, 0), 0},
		{"backwards", wall(msk, 2026, 3, 5, 9, 0), wall(msk, 2026, 3, 2, 9, 0), 0},
		{"same date later", wall(msk, 2026, 3, 2, 9, 0), wall(msk, 2026, 3, 2, 17, 0), 0},
		{"next day earlier hour", wall(msk, 2026, 3, 2, 17, 0), wall(msk, 2026, 3, 3, 9, 0), 1},
		{"over weekend", wall(msk, 2026, 3, 13, 10, 0), wall(msk, 2026, 3, 16, 9, 0), 1},
		{"to a saturday", wall(msk, 2026, 3, 13, 10, 0), wall(msk, 2026, 3, 14, 9, 0), 0},
		{"new year", wall(msk, 2025, 12, 30, 10, 0), wall(msk, 2026, 1, 13, 9, 0), 2},
		{"workday saturday counts", wall(msk, 2025, 10, 31, 10, 0), wall(msk, 2025, 11, 5, 9, 0), 2},
		{"a year", wall(msk, 2025, 12, 31, 10, 0), wall(msk, 2026, 12, 31, 9, 0), 248}, // 261 weekdays - 13 holidays on weekdays,
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ru.BusinessDaysBetween(tc.a, tc.b); got != tc.want {
				t.Errorf("BusinessDaysBetween(%v, %v) = %d, want %d", tc.a, tc.b, got, tc.want)
			}
		})
	}
}

func TestAdd(t *testing.T) {
	msk := mustLoc(t, "Europe/Moscow")
	c := mustNew(t, msk, "ru", nil, nil, nineToSix)
	fri := wall(msk, 2026, 3, 13, 17, 0)
	tests := []struct {
		name string
		d    time.Duration
		n    int
		want time.Time
	}{
		{"nothing", 0, 0, fri},
		{"duration only", 36 * time.Hour, 0, wall(msk, 2026, 3, 15, 5, 0)},
		{"business days only", 0, 1, wall(msk, 2026, 3, 16, 17, 0)},
		{"both", 36 * time.Hour, 1, wall(msk, 2026, 3, 16, 5, 0)},
		{"negative duration ignored", -time.Hour, 0, fri},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.Add(fri, tc.d, tc.n); !got.Equal(tc.want) {
				t.Errorf("Add(%v, %v, %d) = %v, want %v", fri, tc.d, tc.n, got, tc.want)
			}
		})
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name     string
		loc      *time.Location
		country  string
		holidays []Day
		workdays []Day
		window   Window
		want     error // nil = success
	}{
		{"weekends only", time.UTC, "", nil, nil, Window{}, nil},
		{"upper case country", time.UTC, "DE", nil, nil, Window{}, nil},
		{"whole day window", time.UTC, "", nil, nil, Window{0, 1440}, nil},
		{"unknown country", time.UTC, "xx", nil, nil, Window{}, ErrUnknownCountry},
		{"not a date", time.UTC, "", []Day{{2026, 2, 30}}, nil, Window{}, ErrBadDay},
		{"bad workday", time.UTC, "", nil, []Day{{2026, 13, 1}}, Window{}, ErrBadDay},
		{"both lists", time.UTC, "", []Day{{2026, 5, 2}}, []Day{{2026, 5, 2}}, Window{}, ErrBadDay},
		{"window reversed", time.UTC, "", nil, nil, Window{18 * 60, 9 * 60}, ErrBadWindow},
		{"window out of range", time.UTC, "", nil, nil, Window{9 * 60, 25 * 60}, ErrBadWindow},
		{"window negative", time.UTC, "", nil, nil, Window{-1, 60}, ErrBadWindow},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := New(tc.loc, tc.country, tc.holidays, tc.workdays, tc.window)
			if tc.want == nil {
				if err != nil || c == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("New error = %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := New(nil, "", nil, nil, Window{}); err == nil {
		t.Error("New with nil zone: no error")
	}
	// Every problem is reported, not only the first.
	_, err := New(time.UTC, "xx", []Day{{2026, 2, 30}}, nil, Window{600, 60})
	for _, want := range []error{ErrUnknownCountry, ErrBadDay, ErrBadWindow} {
		if !errors.Is(err, want) {
			t.Errorf("joined error %v lacks %v", err, want)
		}
	}
}

func TestSupported(t *testing.T) {
	for _, c := range []string{"", "ru", "RU", "us", "gb", "de", "fr", "it", "es", "nl", "pl", "ua"} {
		if !Supported(c) {
			t.Errorf("Supported(%q) = false", c)
		}
	}
	for _, c := range []string{"xx", "uk", "russia", "ecb", "au"} {
		if Supported(c) {
			t.Errorf("Supported(%q) = true", c)
		}
	}
	cs := Countries()
	if len(cs) < 30 || cs[0] != "ar" {
		t.Errorf("Countries() = %v", cs)
	}
	for _, c := range cs {
		if !Supported(c) {
			t.Errorf("listed country %q not supported", c)
		}
	}
}

// Properties over random instants: AddBusinessDays lands on a business day
// at the same wall time and BusinessDaysBetween counts back exactly n;
// NextOpen is never earlier than its input and lands inside the window on a
// business day.
func TestProperties(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	zones := []string{"Europe/Moscow", "Europe/Berlin", "America/New_York", "Europe/London", "Asia/Tokyo"}
	countries := []string{"ru", "de", "us", "gb", "jp"}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, z := range zones {
		loc := mustLoc(t, z)
		c := mustNew(t, loc, countries[i], ruHolidays, ruWorkdays, nineToSix)
		for range 2000 {
			tm := base.Add(time.Duration(rng.Int64N(int64(4 * 365 * 24 * time.Hour)))).Truncate(time.Minute)
			n := rng.IntN(15)
			got := c.AddBusinessDays(tm, n)
			if n > 0 {
				if !c.IsBusinessDay(got) {
					t.Fatalf("%s: AddBusinessDays(%v, %d) = %v, not a business day", z, tm, n, got)
				}
				lt, lg := tm.In(loc), got.In(loc)
				if lt.Hour() != lg.Hour() && !(lg.Hour() == lt.Hour()+1) { // +1 only in a DST gap
					t.Fatalf("%s: AddBusinessDays(%v, %d) = %v, wall time changed", z, tm, n, got)
				}
			}
			if back := c.BusinessDaysBetween(tm, got); back != n {
				t.Fatalf("%s: BusinessDaysBetween(%v, %v) = %d, want %d", z, tm, got, back, n)
			}
			o := c.NextOpen(tm)
			lo := o.In(loc)
			m := lo.Hour()*60 + lo.Minute()
			if o.Before(tm) || !c.IsBusinessDay(o) || m < nineToSix.Start || m >= nineToSix.End {
				t.Fatalf("%s: NextOpen(%v) = %v", z, tm, o)
			}
			if o.Sub(tm) > 14*24*time.Hour {
				t.Fatalf("%s: NextOpen(%v) = %v, too far", z, tm, o)
			}
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	c := mustNew(t, time.UTC, "us", nil, nil, Window{})
	done := make(chan bool)
	for i := range 8 {
		go func() {
			ok := true
			for y := 2000; y < 2100; y++ {
				tm := time.Date(y+i%3, 7, 4, 12, 0, 0, 0, time.UTC)
				if _, hol := c.Holiday(tm); !hol {
					ok = false
				}
			}
			done <- ok
		}()
	}
	for range 8 {
		if !<-done {
			t.Error("4 July not a holiday in some year")
		}
	}
}

// A wall time inside a DST gap resolves after the gap on the right day,
// whichever side time.Date picks for the zone.
func TestDSTGap(t *testing.T) {
	nyc := mustLoc(t, "America/New_York")
	hav := mustLoc(t, "America/Havana") // skips 00:00-01:00 on Sun 8 Mar 2026
	ber := mustLoc(t, "Europe/Berlin")
	sun := []Day{{2026, 3, 8}, {2026, 3, 29}}
	tests := []struct {
		name string
		got  time.Time
		want time.Time
	}{
		{"new york 02:30", mustNew(t, nyc, "", nil, sun, Window{}).AddBusinessDays(wall(nyc, 2026, 3, 7, 2, 30), 1),
			time.Date(2026, 3, 8, 7, 30, 0, 0, time.UTC)}, // 03:30 EDT
		{"berlin 02:30", mustNew(t, ber, "", nil, sun, Window{}).AddBusinessDays(wall(ber, 2026, 3, 28, 2, 30), 1),
			time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC)}, // 03:30 CEST
		{"havana midnight", mustNew(t, hav, "", nil, sun, Window{}).AddBusinessDays(wall(hav, 2026, 3, 7, 0, 0), 1),
			time.Date(2026, 3, 8, 5, 0, 0, 0, time.UTC)}, // 01:00 CDT, not Saturday 23:00
		{"havana next open always", mustNew(t, hav, "", nil, sun, Window{}).NextOpen(wall(hav, 2026, 3, 7, 10, 0)),
			time.Date(2026, 3, 8, 5, 0, 0, 0, time.UTC)},
		{"havana next open window at midnight", mustNew(t, hav, "", nil, sun, Window{0, 60}).NextOpen(wall(hav, 2026, 3, 7, 10, 0)),
			time.Date(2026, 3, 8, 5, 0, 0, 0, time.UTC)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.got.Equal(tc.want) {
				t.Errorf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
}

// Local is a wall-clock time of a day: inside a DST gap the instant after
// the gap, on that day, also where the gap swallows midnight; in a repeated
// hour the first.
func TestLocal(t *testing.T) {
	ny := mustLoc(t, "America/New_York")
	hav := mustLoc(t, "America/Havana") // skips 00:00-01:00 on Sun 8 Mar 2026
	for _, tc := range []struct {
		loc  *time.Location
		day  Day
		sec  int
		want string
	}{
		{ny, Day{2026, 11, 24}, 8*3600 + 30*60, "2026-11-24T08:30:00-05:00"},
		{ny, Day{2026, 3, 8}, 2*3600 + 30*60, "2026-03-08T03:30:00-04:00"},  // 02:00 -> 03:00
		{ny, Day{2026, 11, 1}, 1*3600 + 30*60, "2026-11-01T01:30:00-04:00"}, // repeated hour: the first
		{hav, Day{2026, 3, 8}, 30 * 60, "2026-03-08T01:30:00-04:00"},        // 00:00 -> 01:00
		{hav, Day{2026, 3, 9}, 0, "2026-03-09T00:00:00-04:00"},              // the day after
		{hav, Day{2026, 3, 7}, 24*3600 - 60, "2026-03-07T23:59:00-05:00"},   // the day before
		{ny, Day{2026, 12, 31}, 24*3600 - 60, "2026-12-31T23:59:00-05:00"},
		{time.UTC, Day{2028, 2, 29}, 12 * 3600, "2028-02-29T12:00:00Z"}, // leap day
		{mustLoc(t, "Asia/Kolkata"), Day{2026, 11, 24}, 8*3600 + 30*60, "2026-11-24T08:30:00+05:30"},
	} {
		c := mustNew(t, tc.loc, "", nil, nil, Window{})
		if got := c.Local(tc.day, tc.sec, 0).Format(time.RFC3339); got != tc.want {
			t.Errorf("Local(%s, %d) in %s = %s, want %s", tc.day, tc.sec, tc.loc, got, tc.want)
		}
	}
}

func TestDayAddDaysBefore(t *testing.T) {
	for _, tc := range []struct {
		d    Day
		n    int
		want Day
	}{
		{Day{2026, 11, 24}, 1, Day{2026, 11, 25}},
		{Day{2026, 11, 30}, 1, Day{2026, 12, 1}},
		{Day{2026, 12, 31}, 1, Day{2027, 1, 1}},
		{Day{2027, 1, 1}, -1, Day{2026, 12, 31}},
		{Day{2028, 2, 28}, 1, Day{2028, 2, 29}},
		{Day{2026, 3, 1}, -1, Day{2026, 2, 28}},
		{Day{2026, 11, 24}, 0, Day{2026, 11, 24}},
		{Day{2026, 11, 24}, 400, Day{2027, 12, 29}},
	} {
		got := tc.d.AddDays(tc.n)
		if got != tc.want {
			t.Errorf("%s.AddDays(%d) = %s, want %s", tc.d, tc.n, got, tc.want)
		}
		if before := tc.d.Before(got); before != (tc.n > 0) {
			t.Errorf("%s.Before(%s) = %t", tc.d, got, before)
		}
		if after := got.Before(tc.d); after != (tc.n < 0) {
			t.Errorf("%s.Before(%s) = %t", got, tc.d, after)
		}
	}
}

package calendar

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rickar/cal/v2"
)

// Errors returned by New.
var (
	// ErrUnknownCountry: the country code has no public holiday calendar.
	ErrUnknownCountry = errors.New("calendar: unknown country")
	// ErrBadDay: a configured holiday or workday is not a real date, or is
	// listed both as a holiday and as a workday.
	ErrBadDay = errors.New("calendar: bad day")
	// ErrBadWindow: the send window is out of range or ends before it starts.
	ErrBadWindow = errors.New("calendar: bad window")
)

// Day is a civil date, with no zone: the Calendar's zone gives it meaning.
type Day struct {
	Year  int
	Month time.Month
	Day   int
}

// DayOf returns t's civil date in loc.
func DayOf(t time.Time, loc *time.Location) Day {
	y, m, d := t.In(loc).Date()
	return Day{y, m, d}
}

func (d Day) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

// noon is d at 12:00 UTC: a zone-free instant for weekday and day stepping.
func (d Day) noon() time.Time { return time.Date(d.Year, d.Month, d.Day, 12, 0, 0, 0, time.UTC) }

func (d Day) valid() bool {
	y, m, dd := d.noon().Date()
	return y == d.Year && m == d.Month && dd == d.Day
}

// AddDays returns the civil date n days after d (before it when n < 0),
// stepping dates, not 24h durations.
func (d Day) AddDays(n int) Day {
	y, m, dd := time.Date(d.Year, d.Month, d.Day+n, 12, 0, 0, 0, time.UTC).Date()
	return Day{y, m, dd}
}

// Before reports whether d is an earlier date than e.
func (d Day) Before(e Day) bool {
	if d.Year != e.Year {
		return d.Year < e.Year
	}
	if d.Month != e.Month {
		return d.Month < e.Month
	}
	return d.Day < e.Day
}

// Window is a daily local send window in minutes since local midnight,
// [Start, End). Start == End means always open. End may be 1440 (24:00).
type Window struct {
	Start, End int
}

func (w Window) always() bool { return w.Start == w.End }

// Calendar answers business-time questions for one zone and country.
// It is immutable after New except for an internal per-year cache, and safe
// for concurrent use.
type Calendar struct {
	loc      *time.Location
	country  string
	public   []*cal.Holiday
	holidays map[Day]struct{}
	workdays map[Day]struct{}
	window   Window

	mu    sync.Mutex
	years map[int]map[Day]string // public holidays by year; guarded by mu
}

// New returns a Calendar for loc and country (ISO 3166 alpha-2, any case;
// "" means weekends only). holidays are extra days off; workdays are days
// that are working days even on a weekend or a public holiday. Every problem
// found is reported, joined.
func New(loc *time.Location, country string, holidays, workdays []Day, window Window) (*Calendar, error) {
	var errs []error
	if loc == nil {
		errs = append(errs, errors.New("calendar: nil time zone"))
	}
	country = strings.ToLower(strings.TrimSpace(country))
	if !Supported(country) {
		errs = append(errs, fmt.Errorf("%w %q (supported: %s)", ErrUnknownCountry, country, strings.Join(Countries(), ", ")))
	}
	c := &Calendar{
		loc:      loc,
		country:  country,
		public:   holidaysOf(country),
		holidays: make(map[Day]struct{}, len(holidays)),
		workdays: make(map[Day]struct{}, len(workdays)),
		window:   window,
		years:    make(map[int]map[Day]string),
	}
	for _, d := range holidays {
		if !d.valid() {
			errs = append(errs, fmt.Errorf("%w: holiday %s is not a date", ErrBadDay, d))
			continue
		}
		c.holidays[d] = struct{}{}
	}
	for _, d := range workdays {
		if !d.valid() {
			errs = append(errs, fmt.Errorf("%w: workday %s is not a date", ErrBadDay, d))
			continue
		}
		if _, ok := c.holidays[d]; ok {
			errs = append(errs, fmt.Errorf("%w: %s is listed both as a holiday and as a workday", ErrBadDay, d))
			continue
		}
		c.workdays[d] = struct{}{}
	}
	if window.Start < 0 || window.Start > 24*60 || window.End < 0 || window.End > 24*60 {
		errs = append(errs, fmt.Errorf("%w: %s outside 00:00-24:00", ErrBadWindow, window))
	} else if window.End < window.Start {
		errs = append(errs, fmt.Errorf("%w: %s ends before it starts (overnight windows are not supported)", ErrBadWindow, window))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return c, nil
}

func (w Window) String() string {
	return fmt.Sprintf("%02d:%02d-%02d:%02d", w.Start/60, w.Start%60, w.End/60, w.End%60)
}

// Location returns the Calendar's time zone.
func (c *Calendar) Location() *time.Location { return c.loc }

// Country returns the lower-case country code, "" for weekends only.
func (c *Calendar) Country() string { return c.country }

// Window returns the send window.
func (c *Calendar) Window() Window { return c.window }

// IsBusinessDay reports whether t's local date is a working day.
func (c *Calendar) IsBusinessDay(t time.Time) bool {
	return c.isBusinessDay(DayOf(t, c.loc))
}

// Holiday reports whether t's local date is off because of a holiday (a
// configured one, named "holiday (config)", or a public one with its name
// from rickar/cal), for logs. A configured workday is not a holiday, and a
// plain weekend is not either.
func (c *Calendar) Holiday(t time.Time) (name string, ok bool) {
	return c.holiday(DayOf(t, c.loc))
}

func (c *Calendar) holiday(d Day) (string, bool) {
	if _, ok := c.holidays[d]; ok {
		return "holiday (config)", true
	}
	if _, ok := c.workdays[d]; ok {
		return "", false
	}
	name, ok := c.publicHolidays(d.Year)[d]
	return name, ok
}

func (c *Calendar) isBusinessDay(d Day) bool {
	if _, ok := c.holidays[d]; ok {
		return false
	}
	if _, ok := c.workdays[d]; ok {
		return true
	}
	if _, ok := c.publicHolidays(d.Year)[d]; ok {
		return false
	}
	wd := d.noon().Weekday()
	return wd != time.Saturday && wd != time.Sunday
}

// publicHolidays returns the public holidays (actual and observed days)
// falling in year, computed once per year. The map is never written after it
// is stored, so callers may read it without the lock.
func (c *Calendar) publicHolidays(year int) map[Day]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m, ok := c.years[year]; ok {
		return m
	}
	m := make(map[Day]string)
	add := func(t time.Time, name string) {
		if t.IsZero() {
			return
		}
		y, mo, d := t.Date()
		if y != year {
			return
		}
		if _, dup := m[Day{y, mo, d}]; !dup {
			m[Day{y, mo, d}] = name
		}
	}
	// An observed day may fall in the neighbouring year (US New Year's Day
	// on a Saturday is observed on Friday 31 December).
	for _, y := range []int{year, year - 1, year + 1} {
		for _, h := range c.public {
			act, obs := h.Calc(y)
			add(act, h.Name)
			add(obs, h.Name)
		}
	}
	if len(c.years) > 64 { // bound the cache; callers only ever look near now
		clear(c.years)
	}
	c.years[year] = m
	return m
}

// wallOn returns t's local wall-clock time on day d in c's zone.
func (c *Calendar) wallOn(t time.Time, d Day) time.Time {
	lt := t.In(c.loc)
	return c.Local(d, lt.Hour()*3600+lt.Minute()*60+lt.Second(), lt.Nanosecond())
}

// Local returns the instant of day d at sec seconds (and nsec) past local
// midnight in c's zone. A wall time inside a DST gap resolves to the
// instant after the gap (02:30 on a 02:00->03:00 night is 03:30), always:
// time.Date alone picks either side depending on the zone, and for zones
// that skip midnight (America/Havana, America/Santiago) it may return 23:00
// on the day before, a day that may not be a business day.
func (c *Calendar) Local(d Day, sec, nsec int) time.Time {
	r := time.Date(d.Year, d.Month, d.Day, 0, 0, sec, nsec, c.loc)
	want := time.Date(d.Year, d.Month, d.Day, 0, 0, sec, nsec, time.UTC)
	got := time.Date(r.Year(), r.Month(), r.Day(), r.Hour(), r.Minute(), r.Second(), r.Nanosecond(), time.UTC)
	if diff := want.Sub(got); diff > 0 {
		r = r.Add(diff)
	}
	return r
}

// AddBusinessDays returns the same local wall-clock time as t on the n-th
// business day after t's local date. Counting starts after t's date even if
// that date is not a business day itself: Saturday + 1 is Monday, as is
// Friday + 1. n <= 0 returns t unchanged.
func (c *Calendar) AddBusinessDays(t time.Time, n int) time.Time {
	if n <= 0 {
		return t
	}
	d := DayOf(t, c.loc)
	for n > 0 {
		d = d.AddDays(1)
		if c.isBusinessDay(d) {
			n--
		}
	}
	return c.wallOn(t, d)
}

// Add returns t plus d (elapsed time) and then plus businessDays business
// days (AddBusinessDays). Either may be zero; a negative d is ignored.
func (c *Calendar) Add(t time.Time, d time.Duration, businessDays int) time.Time {
	if d > 0 {
		t = t.Add(d)
	}
	return c.AddBusinessDays(t, businessDays)
}

// openAt returns the window's opening instant on day d.
func (c *Calendar) openAt(d Day) time.Time {
	return c.Local(d, c.window.Start*60, 0)
}

// NextOpen returns t itself if t is inside the send window on a business
// day, else the window's next opening on a business day. With an
// always-open window that is local midnight of the next business day.
func (c *Calendar) NextOpen(t time.Time) time.Time {
	lt := t.In(c.loc)
	d := Day{lt.Year(), lt.Month(), lt.Day()}
	if c.isBusinessDay(d) {
		if c.window.always() {
			return t
		}
		sec := lt.Hour()*3600 + lt.Minute()*60 + lt.Second()
		if sec < c.window.Start*60 {
			return c.openAt(d)
		}
		if sec < c.window.End*60 {
			return t
		}
	}
	for {
		d = d.AddDays(1)
		if c.isBusinessDay(d) {
			return c.openAt(d)
		}
	}
}

// BusinessDaysBetween counts the business days strictly after a's local
// date up to and including b's local date; 0 if b is not after a.
func (c *Calendar) BusinessDaysBetween(a, b time.Time) int {
	if !b.After(a) {
		return 0
	}
	d, end := DayOf(a, c.loc), DayOf(b, c.loc)
	n := 0
	for d.Before(end) {
		d = d.AddDays(1)
		if c.isBusinessDay(d) {
			n++
		}
	}
	return n
}

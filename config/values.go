package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Values with rules of their own. Each UnmarshalText returns an error that
// names the value and, where the valid forms are few, lists them; the
// decoder prefixes it with FILE:LINE: key. MarshalText gives back a form
// UnmarshalText accepts, so a config can be printed and read again.

// day is the length of a calendar day as Delay counts it ("2 days" = 48h).
const day = 24 * time.Hour

// UnmarshalText accepts a Go duration ("72h", "90m", "1h30m"), a count of
// calendar days ("2 days", "1 day"; = 48h, 24h) or of business days
// ("3 business days", "1 business day"). Negative delays are refused; zero
// is accepted here and refused where a delay must be positive.
func (d *Delay) UnmarshalText(text []byte) error {
	s := strings.ToLower(strings.Join(strings.Fields(string(text)), " "))
	*d = Delay{}
	if s == "" {
		return errors.New("empty delay (use e.g. \"72h\", \"2 days\" or \"3 business days\")")
	}
	if n, unit, ok := strings.Cut(s, " "); ok {
		count, err := strconv.Atoi(n)
		if err != nil || count < 0 {
			return fmt.Errorf("delay %q: %q is not a whole number of days", string(text), n)
		}
		switch unit {
		case "business day", "business days", "workday", "workdays", "working day", "working days":
			d.BusinessDays = count
		case "day", "days":
			if count > 100*365 {
				return fmt.Errorf("delay %q is too long", string(text))
			}
			d.Duration = time.Duration(count) * day
		case "week", "weeks":
			if count > 100*52 {
				return fmt.Errorf("delay %q is too long", string(text))
			}
			d.Duration = time.Duration(count) * 7 * day
		default:
			return fmt.Errorf("delay %q: unknown unit %q (use days, business days, or a duration like \"72h\")", string(text), unit)
		}
		return nil
	}
	dur, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("delay %q is not a duration (\"72h\", \"90m\"), \"N days\" or \"N business days\"", string(text))
	}
	if dur < 0 {
		return fmt.Errorf("delay %q is negative", string(text))
	}
	d.Duration = dur
	return nil
}

// MarshalText returns the delay in a form UnmarshalText accepts.
func (d Delay) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// String returns "3 business days", "2 days" or a Go duration ("36h").
func (d Delay) String() string {
	switch {
	case d.BusinessDays == 1 && d.Duration == 0:
		return "1 business day"
	case d.BusinessDays > 0 && d.Duration == 0:
		return fmt.Sprintf("%d business days", d.BusinessDays)
	case d.BusinessDays > 0:
		return fmt.Sprintf("%d business days + %s", d.BusinessDays, shortDuration(d.Duration))
	case d.Duration == day:
		return "1 day"
	case d.Duration > 0 && d.Duration%day == 0:
		return fmt.Sprintf("%d days", d.Duration/day)
	}
	return shortDuration(d.Duration)
}

// shortDuration is time.Duration.String without trailing zero units
// ("72h" rather than "72h0m0s").
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// UnmarshalText loads an IANA zone ("Europe/Moscow", "UTC"). "Local" is
// refused: the host's zone is not something a config file should depend on.
func (l *Location) UnmarshalText(text []byte) error {
	name := strings.TrimSpace(string(text))
	l.Location = nil
	switch {
	case name == "":
		return errors.New("empty time zone (use an IANA name like \"Europe/Moscow\" or \"UTC\")")
	case strings.EqualFold(name, "local"):
		return errors.New("time zone \"Local\" depends on the host; name the zone (\"Europe/Moscow\", \"UTC\")")
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return fmt.Errorf("unknown time zone %q (use an IANA name like \"Europe/Moscow\")", name)
	}
	l.Location = loc
	return nil
}

// MarshalText returns the zone name.
func (l Location) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// String returns the zone name, "" when unset.
func (l Location) String() string {
	if l.Location == nil {
		return ""
	}
	return l.Location.String()
}

// IsZero reports whether no zone was set.
func (l Location) IsZero() bool { return l.Location == nil }

// UnmarshalText parses "2026-05-11". (A bare TOML date, 2026-05-11 without
// quotes, is accepted too; the decoder converts it.)
func (d *Date) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return fmt.Errorf("date %q is not YYYY-MM-DD", s)
	}
	*d = DateOf(t)
	return nil
}

// DateOf returns the calendar day of t in t's location.
func DateOf(t time.Time) Date {
	y, m, dd := t.Date()
	return Date{Year: y, Month: m, Day: dd}
}

// MarshalText returns "YYYY-MM-DD".
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// String returns "YYYY-MM-DD".
func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Month), d.Day) }

// In returns local midnight of the day in loc.
func (d Date) In(loc *time.Location) time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, loc)
}

// UnmarshalText parses "HH:MM-HH:MM" with start before end ("09:00-18:00";
// "24:00" may end a window). An empty string leaves the window unset,
// which means always open.
func (w *Window) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	*w = Window{}
	if s == "" {
		return nil
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return fmt.Errorf("send window %q is not HH:MM-HH:MM (e.g. \"09:00-18:00\")", s)
	}
	var start, end ClockTime
	if err := start.UnmarshalText([]byte(strings.TrimSpace(a))); err != nil {
		return fmt.Errorf("send window %q: %w", s, err)
	}
	if err := end.UnmarshalText([]byte(strings.TrimSpace(b))); err != nil {
		return fmt.Errorf("send window %q: %w", s, err)
	}
	if start == 24*60 {
		return fmt.Errorf("send window %q: start 24:00 is not a time of day", s)
	}
	if start >= end {
		return fmt.Errorf("send window %q: start must be before end (windows across midnight are not supported)", s)
	}
	*w = Window{Start: start, End: end, Set: true}
	return nil
}

// MarshalText returns "HH:MM-HH:MM", or "" when unset.
func (w Window) MarshalText() ([]byte, error) { return []byte(w.String()), nil }

// String returns "HH:MM-HH:MM", or "" when unset.
func (w Window) String() string {
	if !w.Set {
		return ""
	}
	return w.Start.String() + "-" + w.End.String()
}

// Contains reports whether t's wall-clock time (in t's own location; the
// caller converts to the account's zone first) is inside the window. An
// unset window, or one with Start == End, contains every time.
func (w Window) Contains(t time.Time) bool {
	if !w.Set || w.Start == w.End {
		return true
	}
	m := ClockTime(t.Hour()*60 + t.Minute())
	return m >= w.Start && m < w.End
}

// UnmarshalText parses "HH:MM" from "00:00" to "24:00".
func (c *ClockTime) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || len(h) == 0 || len(h) > 2 ||
		hh < 0 || hh > 24 || mm < 0 || mm > 59 || (hh == 24 && mm != 0) {
		return fmt.Errorf("time %q is not HH:MM between 00:00 and 24:00", s)
	}
	*c = ClockTime(hh*60 + mm)
	return nil
}

// MarshalText returns "HH:MM".
func (c ClockTime) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// String returns "HH:MM".
func (c ClockTime) String() string { return fmt.Sprintf("%02d:%02d", int(c)/60, int(c)%60) }

// UnmarshalText accepts tls, starttls or none.
func (s *Security) UnmarshalText(text []byte) error {
	v := Security(strings.ToLower(strings.TrimSpace(string(text))))
	switch v {
	case SecurityTLS, SecurityStartTLS, SecurityNone:
		*s = v
		return nil
	case "ssl", "implicit", "implicit-tls":
		return fmt.Errorf("%q is not one of tls, starttls, none (hint: implicit TLS, ports 993/465, is \"tls\")", string(text))
	}
	return fmt.Errorf("%q is not one of tls, starttls, none", string(text))
}

// UnmarshalText accepts auto, approve or dry-run.
func (m *Mode) UnmarshalText(text []byte) error {
	v := Mode(strings.ToLower(strings.TrimSpace(string(text))))
	switch v {
	case ModeAuto, ModeApprove, ModeDryRun:
		*m = v
		return nil
	case "dryrun", "dry_run":
		*m = ModeDryRun
		return nil
	}
	return fmt.Errorf("%q is not one of auto, approve, dry-run", string(text))
}

// cautious orders modes from least to most careful.
func (m Mode) cautious() int {
	switch m {
	case ModeApprove:
		return 1
	case ModeDryRun:
		return 2
	}
	return 0
}

// UnmarshalText compiles a Go (RE2) regular expression. Matching is case
// sensitive unless the pattern says (?i).
func (r *Regexp) UnmarshalText(text []byte) error {
	r.Regexp = nil
	if len(text) == 0 {
		return errors.New("empty regular expression (it would match everything)")
	}
	re, err := regexp.Compile(string(text))
	if err != nil {
		// regexp's message repeats the pattern; keep it, it shows the bad part.
		return fmt.Errorf("bad regular expression: %w", err)
	}
	r.Regexp = re
	return nil
}

// MarshalText returns the source text.
func (r Regexp) MarshalText() ([]byte, error) {
	if r.Regexp == nil {
		return nil, nil
	}
	return []byte(r.Regexp.String()), nil
}

// Captures returns the names of r's named groups.
func (r Regexp) Captures() []string {
	if r.Regexp == nil {
		return nil
	}
	var names []string
	for _, n := range r.SubexpNames() {
		if n != "" {
			names = append(names, n)
		}
	}
	return names
}

package backtest

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseSince reads the -since flag relative to now: "90d" (days), "12w"
// (weeks), a Go duration ("720h") or a date ("2026-01-15", midnight in
// loc). The result is never after now.
func ParseSince(s string, now time.Time, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, fmt.Errorf("since: empty; want e.g. 90d, 12w, 720h or 2026-01-15")
	}
	if t, err := time.ParseInLocation("2006-01-02", s, loc); err == nil {
		if t.After(now) {
			return time.Time{}, fmt.Errorf("since %q: in the future", s)
		}
		return t, nil
	}
	if n := len(s) - 1; n > 0 && (s[n] == 'd' || s[n] == 'w') {
		v, err := strconv.Atoi(s[:n])
		if err != nil || v <= 0 {
			return time.Time{}, fmt.Errorf("since %q: want a positive number of days or weeks (90d, 12w)", s)
		}
		if s[n] == 'w' {
			v *= 7
		}
		return now.AddDate(0, 0, -v), nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return time.Time{}, fmt.Errorf("since %q: want e.g. 90d, 12w, 720h or 2026-01-15", s)
	}
	return now.Add(-d), nil
}

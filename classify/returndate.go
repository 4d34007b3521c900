package classify

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"followupd/message"
)

// monthNames are the month names and usual forms (English, Russian in the
// genitive and nominative, German, French, Spanish), longest first within
// a month so "sept" wins over "sep".
var monthNames = [12][]string{
	{"january", "jan", "января", "январь", "янв", "januar", "jänner", "janvier", "enero"},
	{"february", "feb", "февраля", "февраль", "фев", "februar", "février", "fevrier", "febrero"},
	{"march", "mar", "марта", "март", "мар", "märz", "maerz", "mars", "marzo"},
	{"april", "apr", "апреля", "апрель", "апр", "avril", "abril"},
	{"may", "мая", "май", "mai", "mayo"},
	{"june", "jun", "июня", "июнь", "июн", "juni", "juin", "junio"},
	{"july", "jul", "июля", "июль", "июл", "juli", "juillet", "julio"},
	{"august", "aug", "августа", "август", "авг", "août", "aout", "agosto"},
	{"september", "sept", "sep", "сентября", "сентябрь", "сент", "сен", "septembre", "septiembre"},
	{"october", "oct", "октября", "октябрь", "окт", "oktober", "okt", "octobre", "octubre"},
	{"november", "nov", "ноября", "ноябрь", "ноя", "novembre", "noviembre"},
	{"december", "dec", "декабря", "декабрь", "дек", "dezember", "dez", "décembre", "decembre", "diciembre"},
}

// monthOf returns the month a (lower-case) name from monthNames denotes.
func monthOf(name string) int {
	for i, l := range monthNames {
		for _, n := range l {
			if n == name {
				return i + 1
			}
		}
	}
	return 0
}

func monthAlternation() string {
	var names []string
	for _, l := range monthNames {
		for _, n := range l {
			names = append(names, regexp.QuoteMeta(n))
		}
	}
	return `(` + strings.Join(names, "|") + `)\.?`
}

// Go's \b is ASCII-only, so word edges are spelled out: not a letter or
// digit (Cyrillic included).
const (
	wordStart = `(?:^|[^\p{L}\p{N}])`
	wordEnd   = `(?:$|[^\p{L}\p{N}])`
)

var (
	reNumDate  = regexp.MustCompile(`\b(\d{1,2})[./](\d{1,2})(?:[./](\d{4}|\d{2}))?\b`)
	reISODate  = regexp.MustCompile(`\b(\d{4})-(\d{2})-(\d{2})\b`)
	reDayMonth = regexp.MustCompile(`(?i)\b(\d{1,2})(?:st|nd|rd|th|-?го|-?е)?\.?\s+(?:of\s+)?` + monthAlternation() + `(?:\s*,?\s*(\d{4}))?` + wordEnd)
	reMonthDay = regexp.MustCompile(`(?i)` + wordStart + monthAlternation() + `\s+(\d{1,2})(?:st|nd|rd|th)?\b(?:\s*,?\s*(\d{4}))?`)
	// reReturnWord must appear shortly before a date for it to count.
	reReturnWord = regexp.MustCompile(`(?i)` + wordStart + `(?:back|return\w*|until|till|through|thru|to|from|on|` +
		`вернусь|вернуться|возвращусь|выйду|выхожу|буду|до|по|с|со|после|отсутств\p{L}*|отпуск\p{L}*|` +
		`bis|ab|zurück|wieder|jusqu|au|du|hasta|el)` + wordEnd)
)

// quoteStart finds where quoted original text begins in a reply body, so
// dates in our own offer ("prices valid until 31.03") are not read as the
// return date.
var quoteStart = regexp.MustCompile(`(?im)^(?:>|-{2,}\s*(?:original message|исходное сообщение|ursprüngliche nachricht|forwarded message|пересылаемое сообщение)|from:\s|от:\s|von:\s|on .{4,80} wrote:|.{4,80} написал\(а\)?:)`)

// returnDate reads the date an auto-reply says its author is back, relative
// to rec.Date (INTERNALDATE when absent): the latest date in the text that
// follows a "back / until / до / bis ..." word and lies from the message
// day up to two years after it. A date without a year is its next
// occurrence, except that a day up to 60 days back is taken for the start
// of the absence and skipped. Numeric dates are day first (12.03 = 12 March); with '/'
// the month is first only when the day part cannot be a month.
func returnDate(rec *message.Record) (time.Time, string) {
	base := rec.Date
	if base.IsZero() {
		base = rec.Internal
	}
	text := rec.Subject + "\n" + rec.Body
	if loc := quoteStart.FindStringIndex(text); loc != nil && loc[0] > 0 {
		text = text[:loc[0]]
	}
	if len(text) > 4000 {
		text = text[:4000]
	}
	if base.IsZero() {
		return time.Time{}, ""
	}
	loc := base.Location()
	day0 := time.Date(base.Year(), base.Month(), base.Day(), 0, 0, 0, 0, loc)

	var best time.Time
	var bestText string
	consider := func(start, end int, y, m, d int) {
		if m < 1 || m > 12 || d < 1 || d > 31 {
			return
		}
		ctx := text[max(0, start-40):start]
		if !reReturnWord.MatchString(ctx) {
			return
		}
		var t time.Time
		if y > 0 {
			if y < 100 {
				y += 2000
			}
			t = time.Date(y, time.Month(m), d, 0, 0, 0, 0, loc)
		} else {
			t = time.Date(day0.Year(), time.Month(m), d, 0, 0, 0, 0, loc)
			if t.Before(day0) {
				if day0.Sub(t) < 60*24*time.Hour {
					return // a recent past day: when the absence began
				}
				t = time.Date(day0.Year()+1, time.Month(m), d, 0, 0, 0, 0, loc)
			}
		}
		if t.Day() != d { // 31.02 rolled over
			return
		}
		if t.Before(day0) || t.After(day0.AddDate(2, 0, 0)) { // parental leave: up to two years
			return
		}
		if t.After(best) {
			best, bestText = t, strings.TrimSpace(text[start:end])
		}
	}
	atoi := func(s string) int { n, _ := strconv.Atoi(s); return n }

	for _, m := range reISODate.FindAllStringSubmatchIndex(text, 20) {
		consider(m[0], m[1], atoi(text[m[2]:m[3]]), atoi(text[m[4]:m[5]]), atoi(text[m[6]:m[7]]))
	}
	for _, m := range reNumDate.FindAllStringSubmatchIndex(text, 20) {
		// Skip the tail of an ISO date or of a longer number (phones).
		if m[0] > 0 && (text[m[0]-1] == '-' || text[m[0]-1] == '.' || text[m[0]-1] == '+') {
			continue
		}
		a, b := atoi(text[m[2]:m[3]]), atoi(text[m[4]:m[5]])
		y := 0
		if m[6] >= 0 {
			y = atoi(text[m[6]:m[7]])
		}
		d, mo := a, b
		if text[m[3]] == '/' && a <= 12 && b > 12 {
			d, mo = b, a
		}
		consider(m[0], m[1], y, mo, d)
	}
	for _, m := range reDayMonth.FindAllStringSubmatchIndex(text, 20) {
		y := 0
		if m[6] >= 0 {
			y = atoi(text[m[6]:m[7]])
		}
		consider(m[0], m[1], y, monthOf(strings.ToLower(text[m[4]:m[5]])), atoi(text[m[2]:m[3]]))
	}
	for _, m := range reMonthDay.FindAllStringSubmatchIndex(text, 20) {
		y := 0
		if m[6] >= 0 {
			y = atoi(text[m[6]:m[7]])
		}
		consider(m[0], m[1], y, monthOf(strings.ToLower(text[m[2]:m[3]])), atoi(text[m[4]:m[5]]))
	}
	if best.IsZero() {
		return time.Time{}, ""
	}
	return best, fmt.Sprintf("return date %s from %q", best.Format("2006-01-02"), bestText)
}

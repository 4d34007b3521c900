package calendar

import (
	"slices"
	"strings"

	"github.com/rickar/cal/v2"
	"github.com/rickar/cal/v2/ar"
	"github.com/rickar/cal/v2/at"
	"github.com/rickar/cal/v2/be"
	"github.com/rickar/cal/v2/bg"
	"github.com/rickar/cal/v2/br"
	"github.com/rickar/cal/v2/ca"
	"github.com/rickar/cal/v2/ch"
	"github.com/rickar/cal/v2/cz"
	"github.com/rickar/cal/v2/de"
	"github.com/rickar/cal/v2/dk"
	"github.com/rickar/cal/v2/es"
	"github.com/rickar/cal/v2/fr"
	"github.com/rickar/cal/v2/gb"
	"github.com/rickar/cal/v2/gr"
	"github.com/rickar/cal/v2/hr"
	"github.com/rickar/cal/v2/ie"
	"github.com/rickar/cal/v2/it"
	"github.com/rickar/cal/v2/jp"
	"github.com/rickar/cal/v2/lt"
	"github.com/rickar/cal/v2/lv"
	"github.com/rickar/cal/v2/mw"
	"github.com/rickar/cal/v2/nc"
	"github.com/rickar/cal/v2/nl"
	"github.com/rickar/cal/v2/no"
	"github.com/rickar/cal/v2/nz"
	"github.com/rickar/cal/v2/pl"
	"github.com/rickar/cal/v2/ro"
	"github.com/rickar/cal/v2/ru"
	"github.com/rickar/cal/v2/se"
	"github.com/rickar/cal/v2/si"
	"github.com/rickar/cal/v2/sk"
	"github.com/rickar/cal/v2/ua"
	"github.com/rickar/cal/v2/us"
	"github.com/rickar/cal/v2/za"
)

// countries maps an ISO 3166 alpha-2 code (lower case) to the national
// holiday list rickar/cal provides for it. Countries rickar/cal only knows
// by region (au) or that are not countries (ecb) are left out. A constant
// table: never written after package initialisation.
var countries = map[string][]*cal.Holiday{
	"ar": ar.Holidays,
	"at": at.Holidays,
	"be": be.Holidays,
	"bg": bg.Holidays,
	"br": br.Holidays,
	"ca": ca.Holidays,
	"ch": ch.Holidays,
	"cz": cz.Holidays,
	"de": de.Holidays,
	"dk": dk.Holidays,
	"es": es.Holidays,
	"fr": fr.Holidays,
	"gb": gb.Holidays,
	"gr": gr.Holidays,
	"hr": hr.Holidays,
	"ie": ie.Holidays,
	"it": it.Holidays,
	"jp": jp.Holidays,
	"lt": lt.Holidays,
	"lv": lv.Holidays,
	"mw": mw.Holidays,
	"nc": nc.Holidays,
	"nl": nl.Holidays,
	"no": no.Holidays,
	"nz": nz.Holidays,
	"pl": pl.Holidays,
	"ro": ro.Holidays,
	"ru": ru.Holidays,
	"se": se.Holidays,
	"si": si.Holidays,
	"sk": sk.Holidays,
	"ua": ua.Holidays,
	"us": us.Holidays,
	"za": za.Holidays,
}

// ruNewYear supplements rickar/cal's Russian list, which has 1 January
// (New Year) and 7 January (Christmas) only.
//
// QUIRK: the Labour Code of the Russian Federation, art. 112, makes 1-6 and
// 8 January non-working "New Year holidays". rickar/cal v2.1.13 ru omits 2-6
// and 8 January, so a reminder would go out on 3 January. These entries use
// rickar/cal's own Holiday type and day-of-month rule; no observed day,
// because the law moves New Year holidays that fall on a weekend by yearly
// decree, which config's holidays/workdays express.
var ruNewYear = []*cal.Holiday{
	ruJan(2), ruJan(3), ruJan(4), ruJan(5), ruJan(6), ruJan(8),
}

func ruJan(day int) *cal.Holiday {
	return &cal.Holiday{
		Name:  "Новогодние каникулы",
		Type:  cal.ObservancePublic,
		Month: 1,
		Day:   day,
		Func:  cal.CalcDayOfMonth,
	}
}

// holidaysOf returns the public holiday list of a supported country code
// (already lower case); nil for "".
func holidaysOf(country string) []*cal.Holiday {
	hs := countries[country]
	if country == "ru" {
		hs = append(slices.Clip(hs), ruNewYear...)
	}
	return hs
}

// Supported reports whether country (ISO 3166 alpha-2, any case) has a
// public holiday calendar. "" (weekends only) is supported.
func Supported(country string) bool {
	if country == "" {
		return true
	}
	_, ok := countries[strings.ToLower(country)]
	return ok
}

// Countries returns the supported country codes, lower case, sorted.
func Countries() []string {
	cs := make([]string, 0, len(countries))
	for c := range countries {
		cs = append(cs, c)
	}
	slices.Sort(cs)
	return cs
}

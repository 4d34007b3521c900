package config

import (
	"encoding"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"
)

// decoder fills a Go value from the generic tree toml.Decode produced,
// following the same `toml:"name"` tags as toml's own decoder.
//
// Why not decode straight into Config: toml's decoder stops at the first
// bad value and places errors inside [[arrays]] on the last element's line,
// and followupd must report every problem with its own line. Walking the
// tree ourselves keeps going after a bad value, knows each element's index,
// and reports unknown keys where they are written (toml's MetaData has the
// keys but not their lines).
type decoder struct {
	ps *problems
}

// indexRE matches the array indices of a key path.
var indexRE = regexp.MustCompile(`\[\d+\]`)

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// value decodes raw into rv (settable) at path.
func (d *decoder) value(path string, raw any, rv reflect.Value) {
	if rv.CanAddr() && rv.Addr().Type().Implements(textUnmarshaler) {
		d.text(path, raw, rv)
		return
	}
	switch rv.Kind() {
	case reflect.Pointer:
		v := reflect.New(rv.Type().Elem())
		d.value(path, raw, v.Elem())
		rv.Set(v)
	case reflect.Struct:
		m, ok := raw.(map[string]any)
		if !ok {
			d.ps.addf(path, "expected a table, got %s", describe(raw))
			return
		}
		d.structure(path, m, rv)
	case reflect.Map:
		m, ok := raw.(map[string]any)
		if !ok {
			d.ps.addf(path, "expected a table, got %s", describe(raw))
			return
		}
		if rv.IsNil() {
			rv.Set(reflect.MakeMapWithSize(rv.Type(), len(m)))
		}
		for _, k := range d.ordered(path, m) {
			ev := reflect.New(rv.Type().Elem()).Elem()
			d.value(joinPath(path, k), m[k], ev)
			rv.SetMapIndex(reflect.ValueOf(k), ev)
		}
	case reflect.Slice:
		var elems []any
		switch a := raw.(type) {
		case []any:
			elems = a
		case []map[string]any:
			elems = make([]any, len(a))
			for i := range a {
				elems[i] = a[i]
			}
		case map[string]any:
			if rv.Type().Elem().Kind() == reflect.Struct {
				h := indexRE.ReplaceAllString(path, "")
				d.ps.addf(path, "expected an array of tables: write [[%s]], not [%s]", h, h)
				return
			}
			d.ps.addf(path, "expected an array, got %s", describe(raw))
			return
		default:
			d.ps.addf(path, "expected an array, got %s", describe(raw))
			return
		}
		s := reflect.MakeSlice(rv.Type(), len(elems), len(elems))
		for i, e := range elems {
			d.value(indexPath(path, i), e, s.Index(i))
		}
		rv.Set(s)
	case reflect.String:
		s, ok := raw.(string)
		if !ok {
			d.ps.addf(path, "expected a string, got %s", describe(raw))
			return
		}
		rv.SetString(s)
	case reflect.Bool:
		b, ok := raw.(bool)
		if !ok {
			d.ps.addf(path, "expected true or false, got %s", describe(raw))
			return
		}
		rv.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := raw.(int64)
		if !ok {
			d.ps.addf(path, "expected an integer, got %s", describe(raw))
			return
		}
		if rv.OverflowInt(n) || n > math.MaxInt32 || n < math.MinInt32 {
			d.ps.addf(path, "%d is out of range", n)
			return
		}
		rv.SetInt(n)
	default:
		// A Config field of a type this decoder does not know: a
		// programming error, reported rather than panicking.
		d.ps.addf(path, "cannot decode into %s", rv.Type())
	}
}

// text decodes a value whose type implements encoding.TextUnmarshaler.
func (d *decoder) text(path string, raw any, rv reflect.Value) {
	u := rv.Addr().Interface().(encoding.TextUnmarshaler)
	var s string
	switch v := raw.(type) {
	case string:
		s = v
	case time.Time:
		// A bare TOML date (holidays = [2026-05-11]) arrives as time.Time.
		if date, ok := u.(*Date); ok {
			*date = DateOf(v)
			return
		}
		d.ps.addf(path, "expected a string, got a date/time")
		return
	default:
		d.ps.addf(path, "expected a string, got %s", describe(raw))
		return
	}
	if err := u.UnmarshalText([]byte(s)); err != nil {
		d.ps.addf(path, "%s", err)
	}
}

// structure decodes a table into a struct; keys without a field are
// unknown keys.
func (d *decoder) structure(path string, m map[string]any, rv reflect.Value) {
	fields := map[string]int{}
	var names []string
	t := rv.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fields[name] = i
		names = append(names, name)
	}
	for _, k := range d.ordered(path, m) {
		i, ok := fields[k]
		if !ok {
			key := joinPath(path, k)
			if s := closest(k, names); s != "" {
				d.ps.addf(key, "unknown key (did you mean %q?)", s)
			} else {
				d.ps.addf(key, "unknown key")
			}
			continue
		}
		d.value(joinPath(path, k), m[k], rv.Field(i))
	}
}

// ordered returns m's keys in file order (then by name), so problems come
// out in the order a reader meets them.
func (d *decoder) ordered(path string, m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		li, lj := d.ps.lines.line(joinPath(path, keys[i])), d.ps.lines.line(joinPath(path, keys[j]))
		if li != lj {
			return li < lj
		}
		return keys[i] < keys[j]
	})
	return keys
}

// describe names a TOML value's type for an error message.
func describe(raw any) string {
	switch v := raw.(type) {
	case string:
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return fmt.Sprintf("string %q", v)
	case int64:
		return fmt.Sprintf("integer %d", v)
	case float64:
		return fmt.Sprintf("float %g", v)
	case bool:
		return fmt.Sprintf("boolean %t", v)
	case time.Time:
		return "a date/time"
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", raw)
}

// closest returns the name within edit distance 2 of k, if any, for a
// "did you mean" hint.
func closest(k string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if dd := editDistance(strings.ToLower(k), n); dd < bestD {
			best, bestD = n, dd
		}
	}
	return best
}

func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return 99
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

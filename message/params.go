package message

import (
	"mime"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// parseMediaType splits a Content-Type or Content-Disposition value into a
// lower-case value and its parameters (lower-case names, decoded values).
//
// It is deliberately more lenient than mime.ParseMediaType, which rejects
// the whole value on one bad parameter and decodes RFC 2231 only for
// us-ascii and utf-8. QUIRK: real mail has unquoted names with spaces
// (name=Счет 12.pdf), RFC 2047 words inside quoted parameters (Outlook,
// 1C), RFC 2231 values in windows-1251 or koi8-r, duplicate parameters and
// unterminated quotes. Every form yields what can be read.
func parseMediaType(dec *mime.WordDecoder, s string) (value string, params map[string]string) {
	value, rest, _ := strings.Cut(s, ";")
	value = strings.ToLower(strings.TrimSpace(value))
	if i := strings.IndexAny(value, " \t"); i >= 0 { // "text/plain charset=x" without ';'
		rest = value[i:] + ";" + rest
		value = value[:i]
	}
	raw := make(map[string]string)
	var order []string
	for len(rest) > 0 {
		rest = strings.TrimLeft(rest, " \t\r\n;")
		if rest == "" {
			break
		}
		eq := strings.IndexAny(rest, "=;")
		if eq < 0 || rest[eq] == ';' {
			// A bare token without '=': skip it.
			if eq < 0 {
				break
			}
			rest = rest[eq+1:]
			continue
		}
		key := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = strings.TrimLeft(rest[eq+1:], " \t\r\n")
		var val string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(rest); i++ {
				c := rest[i]
				if c == '\\' && i+1 < len(rest) {
					i++
					b.WriteByte(rest[i])
					continue
				}
				if c == '"' {
					break
				}
				b.WriteByte(c)
			}
			val = b.String()
			if i < len(rest) {
				rest = rest[i+1:]
			} else {
				rest = ""
			}
			// Anything between the closing quote and the next ';' is junk.
			if j := strings.IndexByte(rest, ';'); j >= 0 {
				rest = rest[j:]
			} else {
				rest = ""
			}
		} else {
			j := strings.IndexByte(rest, ';')
			if j < 0 {
				j = len(rest)
			}
			val = strings.TrimSpace(rest[:j])
			rest = rest[j:]
		}
		if key == "" {
			continue
		}
		if _, dup := raw[key]; !dup {
			order = append(order, key)
			raw[key] = val
		}
	}

	params = make(map[string]string)
	type segment struct {
		n        int
		extended bool
		val      string
	}
	continued := make(map[string][]segment)
	for _, k := range order {
		v := raw[k]
		base, ext := k, false
		if strings.HasSuffix(base, "*") {
			base, ext = strings.TrimSuffix(base, "*"), true
		}
		if i := strings.LastIndexByte(base, '*'); i >= 0 {
			if n, err := strconv.Atoi(base[i+1:]); err == nil {
				continued[base[:i]] = append(continued[base[:i]], segment{n, ext, v})
				continue
			}
		}
		if ext {
			continued[base] = append(continued[base], segment{0, true, v})
			continue
		}
		params[base] = decodeHeaderText(dec, v)
	}
	for base, segs := range continued {
		sort.SliceStable(segs, func(i, j int) bool { return segs[i].n < segs[j].n })
		var cs string
		var buf []byte
		for i, sg := range segs {
			v := sg.val
			if sg.extended {
				if i == 0 {
					// charset'language'value
					if a := strings.IndexByte(v, '\''); a >= 0 {
						if b := strings.IndexByte(v[a+1:], '\''); b >= 0 {
							cs = v[:a]
							v = v[a+1+b+1:]
						}
					}
				}
				buf = append(buf, percentDecode(v)...)
			} else {
				buf = append(buf, v...)
			}
		}
		// An RFC 2231 value wins over a plain one of the same name: the
		// plain one is the sender's fallback for old readers.
		params[base] = decodeHeaderText(dec, decodeCharset(cs, buf))
	}
	return value, params
}

// percentDecode decodes %XX escapes, keeping malformed ones as written.
func percentDecode(s string) []byte {
	if out, err := url.PathUnescape(s); err == nil {
		return []byte(out)
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b = append(b, unhex(s[i+1])<<4|unhex(s[i+2]))
			i += 2
			continue
		}
		b = append(b, s[i])
	}
	return b
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

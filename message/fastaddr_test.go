package message

import (
	"reflect"
	"testing"
)

var addressSeeds = []string{
	"ivan@seller.test",
	"<ivan@seller.test>",
	"Ivan Petrov <Ivan@Seller.Test>",
	`"Petrov, Ivan" <ivan@seller.test>`,
	`"ivan@seller.test" <ivan@seller.test>`,
	"=?utf-8?b?0JDQvdC90LAg0KHQuNC00L7RgNC+0LLQsA==?= <anna@client.test>",
	"=?utf-8?q?Anna?= =?utf-8?q?_Sidorova?= <anna@client.test>, boss@client.test",
	"=?koi8-r?b?8NLJ18XU?= <a@b.test>",
	"=?x-unknown-charset?q?abc?= <a@b.test>",
	"=?utf-8?b?broken <a@b.test>",
	"Sales Team <sales@seller.test>, \"Maria\" <maria@seller.test>,  boss@client.test ",
	"a@b.test,, c@d.test",
	"a@b.test,",
	"Boris K. <boris@client.test>",
	"undisclosed-recipients:;",
	"a@b.test (Comment)",
	"<a@b.test> trailing",
	"a.@b.test",
	"x <a@b.test> <c@d.test>",
	"\"unterminated <a@b.test>",
	"A B\t C <a@b.test>",
	"=?utf-8?q?a?= b =?utf-8?q?c?= <x@y.test>",
	"postmaster@[127.0.0.1]",
	"\"quoted\"@example.test",
}

// TestFastAddressListTakesCommonForms: the forms nearly all mail has go
// the fast way (else the speed-up is lost without a failing test).
func TestFastAddressListTakesCommonForms(t *testing.T) {
	dec := newWordDecoder()
	for _, s := range addressSeeds[:11] {
		if _, ok := fastAddressList(dec, s); !ok && s != "=?x-unknown-charset?q?abc?= <a@b.test>" {
			t.Errorf("fastAddressList(%q) gave up", s)
		}
	}
	for _, s := range []string{"a@b.test,, c@d.test", "a@b.test,", "Boris K. <boris@client.test>", "undisclosed-recipients:;", "a@b.test (Comment)", "postmaster@[127.0.0.1]", "=?x-unknown-charset?q?abc?= <a@b.test>"} {
		if _, ok := fastAddressList(dec, s); ok {
			t.Errorf("fastAddressList(%q) answered; it is net/mail's to read", s)
		}
	}
}

// FuzzFastAddressList: whenever the fast reader answers, its answer is the
// one net/mail's path (slowAddressList) gives.
func FuzzFastAddressList(f *testing.F) {
	for _, s := range addressSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		dec := newWordDecoder()
		fast, ok := fastAddressList(dec, s)
		if !ok {
			return
		}
		slow, complete := slowAddressList(dec, s)
		if !complete {
			t.Fatalf("%q: fast answered %v, net/mail's path could not read all of it (%v)", s, fast, slow)
		}
		if len(fast) == 0 && len(slow) == 0 {
			return
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q:\nfast %#v\nslow %#v", s, fast, slow)
		}
	})
}

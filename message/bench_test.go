package message

import "testing"

// benchHeaders are header blocks as an initial sync fetches them
// (BODY.PEEK[HEADER.FIELDS (HeaderFields)]): an offer, a Russian reply
// with references, a multi-recipient message with an Outlook thread index.
var benchHeaders = [][]byte{
	[]byte("Message-ID: <offer-4711@seller.test>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0300\r\nFrom: Ivan Petrov <ivan@seller.test>\r\nTo: Client <client17@buyer3.test>\r\nSubject: Commercial offer 4711 for valves\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"),
	[]byte("Message-ID: <reply-4711@buyer.test>\r\nDate: Tue, 24 Nov 2026 11:12:13 +0300\r\nFrom: =?utf-8?b?0JDQvdC90LAg0KHQuNC00L7RgNC+0LLQsA==?= <anna@client.test>\r\nTo: <ivan@seller.test>\r\nSubject: =?utf-8?b?UmU6INCa0L7QvNC80LXRgNGH0LXRgdC60L7QtSDQv9GA0LXQtNC70L7QttC10L3QuNC1?=\r\nIn-Reply-To: <offer-4711@seller.test>\r\nReferences: <offer-4711@seller.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"),
	[]byte("Message-ID: <CAB1234567890abcdef@mail.gmail.com>\r\nDate: Wed, 25 Nov 2026 09:01:02 +0000\r\nFrom: \"Boris K.\" <boris@client.test>\r\nTo: ivan@seller.test, \"Maria\" <maria@seller.test>\r\nCc: boss@client.test\r\nSubject: RE: Invoice 12\r\nThread-Index: AQHZabcdefghijklmnop==\r\nThread-Topic: Invoice 12\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\nX-Mailer: Microsoft Outlook 16.0\r\n\r\n"),
}

func BenchmarkParseHeader(b *testing.B) {
	b.ReportAllocs()
	for i := range b.N {
		if _, err := ParseHeader(benchHeaders[i%len(benchHeaders)]); err != nil {
			b.Fatal(err)
		}
	}
}

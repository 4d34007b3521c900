package daemon_test

import (
	"encoding/base64"
	"net"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func splitAddr(addr string) (string, string) {
	h, p, _ := net.SplitHostPort(addr)
	return h, p
}

//go:build !unix

package store

import (
	"os"
	"time"
)

// mapFile reads the file at path whole where memory mapping and flock are
// not available.
func mapFile(path string, _ time.Duration) (data []byte, release func(), err error) {
	data, err = os.ReadFile(path)
	return data, func() {}, err
}

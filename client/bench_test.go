//go:build unix

// Against the real daemon, which has no Windows port on this branch yet
// (issue 23): the Windows tests of the library are dial_windows_test.go.

package client_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/opxhq/opx/client"
)

// BenchmarkCachedRead compares a cached read through the library, in the
// program's own process on one kept connection, with `opx read` run as a
// process per read, as a shell or a build tool does (make bench).
func BenchmarkCachedRead(b *testing.B) {
	const ref = "op://Private/db/password"
	c := client.New(client.Options{Autostart: true})
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Read(ctx, client.Query{}, ref); err != nil { // cache it
		b.Fatal(err)
	}
	b.Run("library", func(b *testing.B) {
		for b.Loop() {
			v, err := c.Read(ctx, client.Query{}, ref)
			if err != nil {
				b.Fatal(err)
			}
			clear(v)
		}
	})
	b.Run("process", func(b *testing.B) {
		opx := filepath.Join(opxDir, "opx")
		for b.Loop() {
			if out, err := exec.Command(opx, "read", ref).CombinedOutput(); err != nil {
				b.Fatalf("opx read: %v\n%s", err, out)
			}
		}
	})
}

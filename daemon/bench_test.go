package daemon

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/opxhq/opx/backend"
)

func BenchmarkCoreCachedRead(b *testing.B) {
	c, _ := newTestCore(b, backend.NewFake(0), coreConfig{})
	refs := []string{"op://v/i/f"}
	c.resolve(context.Background(), "", backend.Desktop, refs, -1)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c.resolve(context.Background(), "", backend.Desktop, refs, -1)
	}
}

func BenchmarkHandlerCachedRead(b *testing.B) {
	_, h := newTestServer(b, 0)
	do(b, h, "POST", "/v1/read", `{"ref":"op://v/i/f"}`, testToken)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		do(b, h, "POST", "/v1/read", `{"ref":"op://v/i/f"}`, testToken)
	}
}

func BenchmarkHandlerReads100Uncached(b *testing.B) {
	_, h := newTestServer(b, 0)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		refs := make([]string, 100)
		for i := range refs {
			refs[i] = fmt.Sprintf(`"op://v/i%d/f%d"`, n, i)
		}
		n++
		do(b, h, "POST", "/v1/reads", `{"refs":[`+strings.Join(refs, ",")+`]}`, testToken)
	}
}

package harness

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
)

// AssertNoSecrets fails t for every copy of a value left in the memory of
// process pid, or skips t when this process may not read it.
func AssertNoSecrets(t *testing.T, pid int, values [][]byte) {
	t.Helper()
	hits, err := ScanMemory(pid, values)
	if errors.Is(err, ErrNoAccess) {
		t.Skipf("reading the daemon's memory needs root (it is not dumpable): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hits {
		t.Errorf("secret left in the daemon's memory after lock: %s", h)
	}
}

// Hit is one copy of a needle found in a process's memory.
type Hit struct {
	Needle  int    // index of the needle
	Addr    uint64 // where the copy starts
	Mapping string // the mapping's line in /proc/PID/maps
	Context string // the bytes around the copy, quoted
}

func (h Hit) String() string {
	return fmt.Sprintf("needle %d at %#x in [%s]: %s", h.Needle, h.Addr, h.Mapping, h.Context)
}

// ErrNoAccess is returned by ScanMemory when this process may not read the
// other's memory (a non-dumpable process needs root).
var ErrNoAccess = errors.New("no access to the process's memory")

// ScanMemory reads every writable mapping of process pid through
// /proc/PID/mem and returns each copy of each needle it finds.
func ScanMemory(pid int, needles [][]byte) ([]Hit, error) {
	maps, err := os.Open("/proc/" + strconv.Itoa(pid) + "/maps")
	if err != nil {
		return nil, err
	}
	defer maps.Close()
	mem, err := os.Open("/proc/" + strconv.Itoa(pid) + "/mem")
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("%w: %v", ErrNoAccess, err)
		}
		return nil, err
	}
	defer mem.Close()
	longest := 0
	for _, n := range needles {
		longest = max(longest, len(n))
	}
	var hits []Hit
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) < 2 || !strings.Contains(f[1], "w") || strings.Contains(line, "[vvar") || strings.Contains(line, "[vsyscall]") {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start || end-start > 8<<30 {
			continue
		}
		const chunk = 4 << 20
		buf := make([]byte, chunk+longest)
		for off := start; off < end; off += chunk {
			n := min(uint64(len(buf)), end-off)
			got, err := mem.ReadAt(buf[:n], int64(off))
			if got == 0 && err != nil && !errors.Is(err, io.EOF) {
				if errors.Is(err, os.ErrPermission) {
					return nil, fmt.Errorf("%w: %v", ErrNoAccess, err)
				}
				continue // an unmapped or unreadable page range
			}
			data := buf[:got]
			for i, needle := range needles {
				for j := 0; ; {
					k := bytes.Index(data[j:], needle)
					if k < 0 || uint64(j+k) >= chunk {
						break
					}
					at := j + k
					ctx := data[max(at-48, 0):min(at+len(needle)+48, len(data))]
					hits = append(hits, Hit{Needle: i, Addr: off + uint64(at), Mapping: line, Context: strconv.Quote(string(ctx))})
					j = at + 1
				}
			}
		}
	}
	return hits, sc.Err()
}

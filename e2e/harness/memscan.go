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
	reportHits(t, hits, err)
}

// AssertNoSecretPieces fails t for every place in the memory of process pid
// that holds PieceLen bytes or more of a value, registers included: it
// has every thread save them in memory first (SpillRegisters), as the next
// signal to reach it would. It skips t when this process may not read the
// memory.
func AssertNoSecretPieces(t *testing.T, pid int, values [][]byte) {
	t.Helper()
	if err := SpillRegisters(pid); err != nil {
		t.Fatal(err)
	}
	hits, err := ScanMemoryPieces(pid, values)
	reportHits(t, hits, err)
}

func reportHits(t *testing.T, hits []Hit, err error) {
	t.Helper()
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

// Hit is one copy of a needle, or of a piece of one, found in a process's
// memory.
type Hit struct {
	Needle  int    // index of the needle
	Offset  int    // where in the needle the copy starts
	Len     int    // how many of the needle's bytes it holds
	Addr    uint64 // where the copy starts
	Mapping string // the mapping's line in /proc/PID/maps
	Context string // the bytes around the copy, quoted
	// Register names the register the copy was in, when it lies in the
	// registers the kernel saved in a signal frame (see savedRegister).
	Register string
}

func (h Hit) String() string {
	s := fmt.Sprintf("needle %d, bytes %d-%d, at %#x in [%s]", h.Needle, h.Offset, h.Offset+h.Len, h.Addr, h.Mapping)
	if h.Register != "" {
		s += ", in " + h.Register + " as a signal frame saved it"
	}
	return s + ": " + h.Context
}

// ErrNoAccess is returned by ScanMemory when this process may not read the
// other's memory (a non-dumpable process needs root).
var ErrNoAccess = errors.New("no access to the process's memory")

// ScanMemory reads every writable mapping of process pid through
// /proc/PID/mem and returns each copy of each needle it finds.
func ScanMemory(pid int, needles [][]byte) ([]Hit, error) {
	longest := 0
	for _, n := range needles {
		longest = max(longest, len(n))
	}
	var hits []Hit
	err := scanMappings(pid, longest, func(data []byte, limit int, addr uint64, mapping string) {
		for i, needle := range needles {
			for j := 0; ; {
				k := bytes.Index(data[j:], needle)
				if k < 0 || j+k >= limit {
					break
				}
				hits = append(hits, newHit(data, j+k, len(needle), addr, mapping, i, 0))
				j += k + 1
			}
		}
	})
	return hits, err
}

// PieceLen is the length of the pieces of a value that ScanMemoryPieces
// looks for. It takes one at every pieceStride-th byte of a value, so that
// any 16 bytes of it (what one vector register holds) contain a whole one.
const PieceLen = 12

const pieceStride = 4

// ScanMemoryPieces reads every writable mapping of process pid and returns
// each place that holds PieceLen bytes or more of a value, one hit for each
// run of a value's bytes. A value shorter than PieceLen is looked for
// whole.
func ScanMemoryPieces(pid int, values [][]byte) ([]Hit, error) {
	p := pieceIndex{pieces: map[[PieceLen]byte]pieceAt{}, values: values}
	var short [][]byte
	var shortIndex []int
	for i, v := range values {
		if len(v) < PieceLen {
			short, shortIndex = append(short, v), append(shortIndex, i)
			continue
		}
		for off := 0; off+PieceLen <= len(v); off += pieceStride {
			p.pieces[[PieceLen]byte(v[off:])] = pieceAt{i, off}
			k := uint16(v[off]) | uint16(v[off+1])<<8
			p.first[k/64] |= 1 << (k % 64)
		}
	}
	var hits []Hit
	err := scanMappings(pid, PieceLen, func(data []byte, limit int, addr uint64, mapping string) {
		for _, r := range p.find(data, limit) {
			hits = append(hits, newHit(data, r.at, r.n, addr, mapping, r.value, r.offset))
		}
	})
	if err != nil || len(short) == 0 {
		return hits, err
	}
	shortHits, err := ScanMemory(pid, short)
	for _, h := range shortHits {
		h.Needle = shortIndex[h.Needle]
		hits = append(hits, h)
	}
	return hits, err
}

// pieceIndex finds the pieces of values: PieceLen bytes from every
// pieceStride-th byte of each, and a bit for the first two bytes of each
// piece, which rules out most places at the cost of one load.
type pieceIndex struct {
	pieces map[[PieceLen]byte]pieceAt
	first  [1 << 16 / 64]uint64
	values [][]byte
}

type pieceAt struct{ value, offset int }

type pieceRun struct{ at, n, value, offset int }

// find returns the runs of a value's bytes that start with a piece in data
// before limit. The race detector does not instrument it: it would make
// the loop over every byte many times slower.
//
//go:norace
func (p *pieceIndex) find(data []byte, limit int) []pieceRun {
	var runs []pieceRun
	for i := 0; i < limit && i+PieceLen <= len(data); i++ {
		k := uint16(data[i]) | uint16(data[i+1])<<8
		if p.first[k/64]&(1<<(k%64)) == 0 {
			continue
		}
		at, ok := p.pieces[[PieceLen]byte(data[i:])]
		if !ok {
			continue
		}
		v := p.values[at.value]
		n := PieceLen
		for i+n < len(data) && at.offset+n < len(v) && data[i+n] == v[at.offset+n] {
			n++
		}
		runs = append(runs, pieceRun{i, n, at.value, at.offset})
		i += n - 1
	}
	return runs
}

func newHit(data []byte, at, n int, addr uint64, mapping string, needle, offset int) Hit {
	ctx := data[max(at-48, 0):min(at+n+48, len(data))]
	return Hit{Needle: needle, Offset: offset, Len: n, Addr: addr + uint64(at), Mapping: mapping,
		Context: strconv.Quote(string(ctx)), Register: savedRegister(data, at)}
}

// savedRegister names the vector register that held data[at] when data[at]
// lies in an FXSAVE image, which is how the Linux kernel saves the
// registers in a signal frame on x86-64: XMM0-XMM15 at 160, 16 bytes each,
// and "SXPF" (FP_XSTATE_MAGIC1) at 464. It returns "" otherwise.
func savedRegister(data []byte, at int) string {
	for fx := max(at-160-255, 0); fx <= at-160 && fx+468 <= len(data); fx++ {
		if string(data[fx+464:fx+468]) == "SXPF" {
			return fmt.Sprintf("XMM%d", (at-fx-160)/16)
		}
	}
	return ""
}

// scanMappings reads every writable mapping of process pid through
// /proc/PID/mem in chunks, each followed by overlap bytes of the next, and
// calls f with each chunk, the length before the overlap, its address and
// the mapping's line in /proc/PID/maps.
func scanMappings(pid, overlap int, f func(data []byte, limit int, addr uint64, mapping string)) error {
	maps, err := os.Open("/proc/" + strconv.Itoa(pid) + "/maps")
	if err != nil {
		return err
	}
	defer maps.Close()
	mem, err := os.Open("/proc/" + strconv.Itoa(pid) + "/mem")
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return fmt.Errorf("%w: %v", ErrNoAccess, err)
		}
		return err
	}
	defer mem.Close()
	const chunk = 4 << 20
	buf := make([]byte, chunk+overlap)
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) < 2 || !strings.Contains(fields[1], "w") || strings.Contains(line, "[vvar") || strings.Contains(line, "[vsyscall]") {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start || end-start > 8<<30 {
			continue
		}
		for off := start; off < end; off += chunk {
			n := min(uint64(len(buf)), end-off)
			got, err := mem.ReadAt(buf[:n], int64(off))
			if got == 0 && err != nil && !errors.Is(err, io.EOF) {
				if errors.Is(err, os.ErrPermission) {
					return fmt.Errorf("%w: %v", ErrNoAccess, err)
				}
				continue // an unmapped or unreadable page range
			}
			f(buf[:got], min(got, chunk), off, line)
		}
	}
	return sc.Err()
}

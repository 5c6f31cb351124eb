//go:build windows

package policy

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/windows"
)

// SignedCheck verifies an executable's Authenticode signature the way
// Windows does before it trusts a download: WinVerifyTrust with the
// generic verify action, on the signature embedded in the file or, for a
// file with none (most of Windows' own programs), on the system catalog
// that lists its hash. The signature must be intact and chain to a root
// the machine trusts. Revocation is not checked: that would fetch lists
// over the network for each new program, from the daemon, at request
// time.
//
// The answer is remembered by the file's identity and times (volume
// serial, file index, size, change and write times) and checked on the
// handle it was read from, so a file replaced or written after it was
// verified is verified again.
func SignedCheck() func(path string) bool { return signatures.check }

var signatures = &signedCache{}

type signedCache struct {
	mu sync.Mutex
	ok map[fileStamp]bool
}

type fileStamp struct {
	volume, index uint64
	size          int64
	change, write int64
}

// maxRememberedSignatures bounds the memory of signedCache.
const maxRememberedSignatures = 512

func (c *signedCache) check(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	h := windows.Handle(f.Fd())
	stamp, err := stampOf(h)
	if err != nil {
		return false
	}
	c.mu.Lock()
	ok, seen := c.ok[stamp]
	c.mu.Unlock()
	if seen {
		return ok
	}
	err = verifyEmbedded(path, h)
	if err == windows.Errno(windows.TRUST_E_NOSIGNATURE) {
		err = verifyCatalog(path, h)
	}
	ok = err == nil
	// A file written while it was verified is not remembered.
	if again, serr := stampOf(h); serr != nil || again != stamp {
		return false
	}
	c.mu.Lock()
	if c.ok == nil || len(c.ok) >= maxRememberedSignatures {
		c.ok = make(map[fileStamp]bool)
	}
	c.ok[stamp] = ok
	c.mu.Unlock()
	return ok
}

// stampOf is what identifies the content of the open file h.
func stampOf(h windows.Handle) (fileStamp, error) {
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &info); err != nil {
		return fileStamp{}, err
	}
	var basic struct {
		CreationTime, LastAccessTime, LastWriteTime, ChangeTime int64
		FileAttributes, _                                       uint32
	}
	if err := windows.GetFileInformationByHandleEx(h, windows.FileBasicInfo, (*byte)(unsafe.Pointer(&basic)), uint32(unsafe.Sizeof(basic))); err != nil {
		return fileStamp{}, err
	}
	return fileStamp{
		volume: uint64(info.VolumeSerialNumber),
		index:  uint64(info.FileIndexHigh)<<32 | uint64(info.FileIndexLow),
		size:   int64(info.FileSizeHigh)<<32 | int64(info.FileSizeLow),
		change: basic.ChangeTime, write: basic.LastWriteTime,
	}, nil
}

// winVerify runs WinVerifyTrust on what data names, with no UI, no
// revocation check and no network retrieval, and releases its state.
func winVerify(choice uint32, subject unsafe.Pointer) error {
	data := windows.WinTrustData{
		Size:                            uint32(unsafe.Sizeof(windows.WinTrustData{})),
		UIChoice:                        windows.WTD_UI_NONE,
		RevocationChecks:                windows.WTD_REVOKE_NONE,
		UnionChoice:                     choice,
		FileOrCatalogOrBlobOrSgnrOrCert: subject,
		StateAction:                     windows.WTD_STATEACTION_VERIFY,
		ProvFlags:                       windows.WTD_CACHE_ONLY_URL_RETRIEVAL | windows.WTD_REVOCATION_CHECK_NONE,
	}
	err := windows.WinVerifyTrustEx(windows.InvalidHWND, &windows.WINTRUST_ACTION_GENERIC_VERIFY_V2, &data)
	data.StateAction = windows.WTD_STATEACTION_CLOSE
	windows.WinVerifyTrustEx(windows.InvalidHWND, &windows.WINTRUST_ACTION_GENERIC_VERIFY_V2, &data)
	return err
}

// verifyEmbedded checks the signature inside the file.
func verifyEmbedded(path string, h windows.Handle) error {
	p, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return err
	}
	info := windows.WinTrustFileInfo{Size: uint32(unsafe.Sizeof(windows.WinTrustFileInfo{})), FilePath: p, File: h}
	return winVerify(windows.WTD_CHOICE_FILE, unsafe.Pointer(&info))
}

var (
	wintrust                  = windows.NewLazySystemDLL("wintrust.dll")
	procAcquireContext2       = wintrust.NewProc("CryptCATAdminAcquireContext2")
	procCalcHashFromHandle2   = wintrust.NewProc("CryptCATAdminCalcHashFromFileHandle2")
	procEnumCatalogFromHash   = wintrust.NewProc("CryptCATAdminEnumCatalogFromHash")
	procCatalogInfoFromCtx    = wintrust.NewProc("CryptCATCatalogInfoFromContext")
	procReleaseCatalogContext = wintrust.NewProc("CryptCATAdminReleaseCatalogContext")
	procReleaseContext        = wintrust.NewProc("CryptCATAdminReleaseContext")
)

// catalogInfo is CATALOG_INFO (mscat.h).
type catalogInfo struct {
	size uint32
	file [windows.MAX_PATH]uint16
}

// wintrustCatalogInfo is WINTRUST_CATALOG_INFO (wintrust.h).
type wintrustCatalogInfo struct {
	size           uint32
	version        uint32
	catalogPath    *uint16
	memberTag      *uint16
	memberPath     *uint16
	memberFile     windows.Handle
	hash           *byte
	hashSize       uint32
	catalogContext uintptr
	catAdmin       windows.Handle
}

// verifyCatalog checks the file's SHA-256 against the system's catalogs
// and the signature of the catalog that lists it.
func verifyCatalog(path string, h windows.Handle) error {
	for _, p := range []*windows.LazyProc{procAcquireContext2, procCalcHashFromHandle2, procEnumCatalogFromHash, procCatalogInfoFromCtx, procReleaseCatalogContext, procReleaseContext} {
		if err := p.Find(); err != nil {
			return err
		}
	}
	var admin windows.Handle
	alg, _ := windows.UTF16PtrFromString("SHA256")
	if r, _, err := procAcquireContext2.Call(uintptr(unsafe.Pointer(&admin)), 0, uintptr(unsafe.Pointer(alg)), 0, 0); r == 0 {
		return fmt.Errorf("CryptCATAdminAcquireContext2: %w", err)
	}
	defer procReleaseContext.Call(uintptr(admin), 0)
	hash := make([]byte, 64)
	n := uint32(len(hash))
	if r, _, err := procCalcHashFromHandle2.Call(uintptr(admin), uintptr(h), uintptr(unsafe.Pointer(&n)), uintptr(unsafe.Pointer(&hash[0])), 0); r == 0 {
		return fmt.Errorf("CryptCATAdminCalcHashFromFileHandle2: %w", err)
	}
	hash = hash[:n]
	cat, _, err := procEnumCatalogFromHash.Call(uintptr(admin), uintptr(unsafe.Pointer(&hash[0])), uintptr(n), 0, 0)
	if cat == 0 {
		return fmt.Errorf("no catalog lists the file: %w", err)
	}
	defer procReleaseCatalogContext.Call(uintptr(admin), cat, 0)
	ci := catalogInfo{size: uint32(unsafe.Sizeof(catalogInfo{}))}
	if r, _, err := procCatalogInfoFromCtx.Call(cat, uintptr(unsafe.Pointer(&ci)), 0); r == 0 {
		return fmt.Errorf("CryptCATCatalogInfoFromContext: %w", err)
	}
	member, err := windows.UTF16PtrFromString(path)
	if err != nil {
		return err
	}
	tag, _ := windows.UTF16PtrFromString(strings.ToUpper(fmt.Sprintf("%x", hash)))
	info := wintrustCatalogInfo{
		size:        uint32(unsafe.Sizeof(wintrustCatalogInfo{})),
		catalogPath: &ci.file[0],
		memberTag:   tag,
		memberPath:  member,
		memberFile:  h,
		hash:        &hash[0],
		hashSize:    n,
		catAdmin:    admin,
	}
	return winVerify(windows.WTD_CHOICE_CATALOG, unsafe.Pointer(&info))
}

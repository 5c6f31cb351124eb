package daemon

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/windows"
)

// fileKey is the identity and state of the open file f (fi its Stat): its
// volume serial number and file index, size, and change and write times
// (NTFS's change time moves with any write, as Unix's ctime does).
func fileKey(f *os.File, fi os.FileInfo) (exeKey, error) {
	h := windows.Handle(f.Fd())
	var info windows.ByHandleFileInformation
	if err := windows.GetFileInformationByHandle(h, &info); err != nil {
		return exeKey{}, fmt.Errorf("no file identity for %s: %w", f.Name(), err)
	}
	var basic fileBasicInfo
	if err := windows.GetFileInformationByHandleEx(h, windows.FileBasicInfo, (*byte)(unsafe.Pointer(&basic)), uint32(unsafe.Sizeof(basic))); err != nil {
		return exeKey{}, fmt.Errorf("no change time for %s: %w", f.Name(), err)
	}
	return exeKey{dev: uint64(info.VolumeSerialNumber), ino: uint64(info.FileIndexHigh)<<32 | uint64(info.FileIndexLow),
		size: fi.Size(), ctime: basic.ChangeTime, mtime: fi.ModTime().UnixNano()}, nil
}

// fileID is "" on Windows, where a FileInfo from os.Stat carries no file
// index (getting one costs an open). The stamps it is part of stay sound
// without it: opx writes config.json by rename of a fresh file, whose
// modification time (100 ns resolution on NTFS) is new.
func fileID(os.FileInfo) string { return "" }

// fileBasicInfo is FILE_BASIC_INFO (winbase.h), which x/sys/windows does
// not define: times in 100 ns since 1601.
type fileBasicInfo struct {
	CreationTime, LastAccessTime, LastWriteTime, ChangeTime int64
	FileAttributes                                          uint32
	_                                                       uint32
}

package store

import "syscall"

// madvPopulateWrite is MADV_POPULATE_WRITE (Linux 5.14): populate page
// tables writable, as a write would, without changing the data.
const madvPopulateWrite = 23

// populateWrite faults b's pages in for writing (see mmapSegment.prefault).
func populateWrite(b []byte) error { return syscall.Madvise(b, madvPopulateWrite) }

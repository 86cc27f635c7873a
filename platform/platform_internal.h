// Declarations shared by the platform layer's files, implemented once per
// build (linux_*.cc or posix_*.cc) or in the shared files.
#ifndef UNIPOOL_PLATFORM_PLATFORM_INTERNAL_H_
#define UNIPOOL_PLATFORM_PLATFORM_INTERNAL_H_

#include <cstdint>

namespace unipool::platform {

// Sets FD_CLOEXEC. False (errno set) on failure.
bool SetCloseOnExec(int fd);

// recvmsg flags that make a received fd close-on-exec at once (Linux
// MSG_CMSG_CLOEXEC), or 0 where fcntl must do it afterwards.
int ReceiveFdFlags();

// Whether nobody can resize the shm object `fd` of `size` bytes (sealed, or
// sized once for good as on macOS).
bool ShmSizeIsFixed(int fd, uint64_t size);

// Faults in [address, +length) for writing without changing its bytes.
void PopulatePages(uint8_t* address, uint64_t length);
// The portable way: one read and write-back per page.
void TouchPages(uint8_t* address, uint64_t length);
// Faults in [address, +length) (page aligned) for writing while other
// threads may write it: Linux MADV_POPULATE_WRITE, else ReadPages.
void PopulatePagesShared(uint8_t* address, uint64_t length);
// One read per page: maps each page without storing (safe under writers).
void ReadPages(const uint8_t* address, uint64_t length);
// mmap flags that map every page of the range at once (Linux MAP_POPULATE),
// or 0 where there are none.
int PopulateMapFlag();

// Puts the pages of `from` at `to` in place of what was mapped there (both
// [, +length), page aligned) and unmaps `from`. False (errno set) on failure.
bool MovePages(void* from, void* to, uint64_t length);

}  // namespace unipool::platform

#endif  // UNIPOOL_PLATFORM_PLATFORM_INTERNAL_H_

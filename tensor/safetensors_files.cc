// Reading safetensors headers from files and folders of shards, and writing
// files back. Only headers are read here; tensor bytes are the caller's.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_format.h"
#include "unipool/common/socket.h"
#include "unipool/common/status_macros.h"
#include "unipool/tensor/safetensors.h"

namespace unipool {
namespace {

absl::Status Errno(std::string_view what, const std::string& path) {
  return absl::InvalidArgumentError(absl::StrFormat("%s %s: %s", what, path, std::strerror(errno)));
}

absl::Status PreadAll(int fd, uint8_t* out, size_t length, uint64_t offset,
                      const std::string& path) {
  while (length > 0) {
    ssize_t n = ::pread(fd, out, length, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("read", path);
    if (n == 0)
      return absl::InvalidArgumentError(absl::StrFormat("%s: shorter than expected", path));
    out += n;
    length -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

absl::Status WriteAll(int fd, const uint8_t* data, size_t length, const std::string& path) {
  while (length > 0) {
    ssize_t n = ::write(fd, data, length);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("write", path);
    data += n;
    length -= static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t limit) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Errno("open", path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Errno("stat", path);
  if (static_cast<uint64_t>(st.st_size) > limit) {
    return absl::InvalidArgumentError(absl::StrFormat("%s: larger than %d bytes", path, limit));
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  RETURN_IF_ERROR(
      PreadAll(fd.get(), reinterpret_cast<uint8_t*>(text.data()), text.size(), 0, path));
  return text;
}

// Every tensor the index names is in the file it names, and every file's
// tensors are in the index.
absl::Status CheckIndexMatches(const SafetensorsIndex& index, const SafetensorsModel& model) {
  std::map<std::string, std::string> found;  // tensor -> file holding it
  for (const SafetensorsFile& file : model.files) {
    for (const SafetensorsTensor& t : file.header.tensors) {
      if (!found.emplace(t.name, file.name).second) {
        return absl::InvalidArgumentError(
            absl::StrFormat("tensor '%s' is in both %s and %s", t.name, found[t.name], file.name));
      }
    }
  }
  for (const auto& [tensor, file] : index.weight_map) {
    auto it = found.find(tensor);
    if (it == found.end() || it->second != file) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: tensor '%s' is not in %s, where the index puts it",
                          kSafetensorsIndexName, tensor, file));
    }
  }
  if (found.size() != index.weight_map.size()) {
    for (const auto& [tensor, file] : found) {
      if (!index.weight_map.contains(tensor)) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "%s: tensor '%s' of %s is not in the index", kSafetensorsIndexName, tensor, file));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<SafetensorsModel> OpenFolder(const std::filesystem::path& folder) {
  std::filesystem::path index_path = folder / kSafetensorsIndexName;
  SafetensorsModel model;
  if (!std::filesystem::exists(index_path)) {
    std::vector<std::string> shards;
    for (const auto& entry : std::filesystem::directory_iterator(folder)) {
      if (entry.path().extension() == ".safetensors") shards.push_back(entry.path());
    }
    if (shards.size() != 1) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: no %s and %d .safetensors files (need the index, or exactly one file)",
          folder.string(), kSafetensorsIndexName, shards.size()));
    }
    ASSIGN_OR_RETURN(SafetensorsFile file, ReadSafetensorsFile(shards[0]));
    model.files.push_back(std::move(file));
    return model;
  }
  ASSIGN_OR_RETURN(std::string text, ReadSmallFile(index_path, kMaxSafetensorsHeaderBytes));
  ASSIGN_OR_RETURN(SafetensorsIndex index, ParseSafetensorsIndex(text));
  for (const std::string& name : index.files) {
    ASSIGN_OR_RETURN(SafetensorsFile file, ReadSafetensorsFile(folder / name));
    model.files.push_back(std::move(file));
  }
  RETURN_IF_ERROR(CheckIndexMatches(index, model));
  model.index_raw = std::move(index.raw);
  return model;
}

}  // namespace

absl::StatusOr<SafetensorsFile> ReadSafetensorsFile(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return Errno("open", path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Errno("stat", path);
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError(path + ": not a regular file");
  SafetensorsFile file;
  file.path = path;
  file.name = std::filesystem::path(path).filename();
  file.size = static_cast<uint64_t>(st.st_size);
  std::vector<uint8_t> raw(std::min<uint64_t>(file.size, 8));
  RETURN_IF_ERROR(PreadAll(fd.get(), raw.data(), raw.size(), 0, path));
  if (raw.size() == 8) {
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | raw[i];
    // Read the JSON only when the length is plausible; the parser reports
    // the rest with the file's name.
    if (n <= file.size - 8 && n <= kMaxSafetensorsHeaderBytes) {
      raw.resize(8 + n);
      RETURN_IF_ERROR(PreadAll(fd.get(), raw.data() + 8, n, 8, path));
    }
  }
  ASSIGN_OR_RETURN(file.header, ParseSafetensorsHeader(raw, file.size, file.name));
  return file;
}

absl::StatusOr<SafetensorsModel> OpenSafetensorsModel(const std::string& path) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) return OpenFolder(path);
  ASSIGN_OR_RETURN(SafetensorsFile file, ReadSafetensorsFile(path));
  SafetensorsModel model;
  model.files.push_back(std::move(file));
  return model;
}

absl::Status WriteSafetensorsFile(const std::string& path, const SafetensorsHeader& header,
                                  const TensorBytesSource& fill) {
  std::string temp = path + ".partial";
  Fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (fd.get() < 0) return Errno("create", temp);
  absl::Status status = WriteAll(fd.get(), reinterpret_cast<const uint8_t*>(header.raw.data()),
                                 header.raw.size(), temp);
  std::vector<uint8_t> buffer;
  for (const SafetensorsTensor& t : header.tensors) {
    for (uint64_t at = 0; status.ok() && at < t.bytes(); at += buffer.size()) {
      buffer.resize(std::min(t.bytes() - at, kSafetensorsWriteChunk));
      status = fill(t, at, buffer);
      if (status.ok()) status = WriteAll(fd.get(), buffer.data(), buffer.size(), temp);
    }
  }
  if (status.ok() && ::fsync(fd.get()) != 0) status = Errno("fsync", temp);
  if (status.ok() && ::rename(temp.c_str(), path.c_str()) != 0) status = Errno("rename", temp);
  if (!status.ok()) ::unlink(temp.c_str());
  return status;
}

}  // namespace unipool

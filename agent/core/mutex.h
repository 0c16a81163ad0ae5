#pragma once
// A mutex clang's thread-safety analysis understands (-Wthread-safety; leveldb's
// port/thread_annotations.h shape). libstdc++'s std::mutex carries no capability attribute,
// so shared state is guarded by a dbpulse::Mutex and declared with GUARDED_BY:
//
//   Mutex mu_;
//   std::vector<int> items_ GUARDED_BY(mu_);
//   void addLocked(int v) REQUIRES(mu_);  // a private helper called with mu_ held
//
// MutexLock holds a Mutex for its scope; unlock()/lock() release and retake it in the middle
// (to call out without the lock), and it is what std::condition_variable_any waits on:
//   MutexLock lock(mu_);
//   cv_.wait(lock, [this]() REQUIRES(mu_) { return !items_.empty(); });
// (the analysis checks a lambda on its own, so a predicate that reads guarded state says
// REQUIRES; the wait calls it with the lock held).
//
// The macros expand to clang attributes and to nothing on other compilers (GCC builds the
// main tree). tests/lint/thread_safety.sh compiles every library source with clang-14
// -Wthread-safety -Werror.

#include <mutex>

#if defined(__clang__)
#define DBPULSE_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define DBPULSE_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) DBPULSE_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY DBPULSE_THREAD_ANNOTATION(scoped_lockable)
// The member is read and written only with the named mutex held.
#define GUARDED_BY(x) DBPULSE_THREAD_ANNOTATION(guarded_by(x))
// The pointee (not the pointer) is guarded by the named mutex.
#define PT_GUARDED_BY(x) DBPULSE_THREAD_ANNOTATION(pt_guarded_by(x))
// The caller holds these mutexes.
#define REQUIRES(...) DBPULSE_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
// The caller must not hold these mutexes (the function takes them).
#define EXCLUDES(...) DBPULSE_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ACQUIRE(...) DBPULSE_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) DBPULSE_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) DBPULSE_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) DBPULSE_THREAD_ANNOTATION(assert_capability(x))
// The escape hatch: the analysis skips this function. Say why next to each use.
#define NO_THREAD_SAFETY_ANALYSIS DBPULSE_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace dbpulse {

// std::mutex with the capability attribute. Lockable (lock/unlock/try_lock), so
// std::condition_variable_any and std::scoped_lock accept it too.
class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }
  bool try_lock() TRY_ACQUIRE(true) { return mu_.try_lock(); }
  // Tells the analysis the caller holds this mutex (checked by nothing at run time).
  void assertHeld() const ASSERT_CAPABILITY(this) {}

 private:
  std::mutex mu_;
};

// Holds a Mutex from construction to destruction. unlock() and lock() release and retake it
// in between (each only in that state); BasicLockable, so condition_variable_any waits on it.
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~MutexLock() RELEASE() {
    if (held_) mu_.unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void lock() ACQUIRE() {
    mu_.lock();
    held_ = true;
  }
  void unlock() RELEASE() {
    held_ = false;
    mu_.unlock();
  }

 private:
  Mutex& mu_;
  bool held_ = true;
};

}  // namespace dbpulse

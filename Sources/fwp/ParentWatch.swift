import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A child run of `fwp reproduce` (ChildRunPool sets `FWP_PARENT_PID`) ends
/// when its parent does, so a killed `reproduce` leaves no orphan trainers
/// fighting for the cores: a watcher thread checks once a second that the
/// parent is still its parent. (The kernel's PR_SET_PDEATHSIG does not do:
/// it fires when the spawning *thread* ends, and Foundation spawns from a
/// thread that ends at once.) The child's folder stays as a killed run's
/// would: its last checkpoint can be resumed.
enum ParentWatch {
    static let variable = "FWP_PARENT_PID"

    static func apply() {
        guard let text = getenv(variable), let parent = Int32(String(cString: text)) else { return }
        if getppid() != parent { exit(1) }
        let watcher = Thread {
            while true {
                sleep(1)
                if getppid() != parent { exit(1) }
            }
        }
        watcher.start()
    }
}

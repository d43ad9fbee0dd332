import XCTest
import Foundation
import FWTestSupport
@testable import fwp

/// A row whose child stopped on a non-finite loss is a "diverged" row of the
/// table (the paper's carried linear transformer), not a failure of the run;
/// JSON, CSV and Markdown say so without NaN.
final class Schlag2021LMReportTests: XCTestCase {
    func testDivergedRowsAreReportedNotFailed() throws {
        let plan = Schlag2021LM.rows.first { $0.folderName == "linear-carry" }!
        XCTAssertNil(Schlag2021LMRow.diverged("/nonexistent", plan: plan, message: "cannot write the log"))
        let row = try XCTUnwrap(Schlag2021LMRow.diverged("/nonexistent", plan: plan, message: "step 812: loss is NaN"))
        XCTAssertEqual(row.divergedAtStep, 812)
        XCTAssertTrue(row.line.contains("diverged at step 812"), row.line)
        let config = Schlag2021LM.config(mixer: .linear, mode: .carry, data: "d", quick: true)
        let report = Schlag2021LMReport(rows: [row], quick: true, wallSeconds: 1, config: config, blasCore: "x")
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: try report.json()) as? [String: Any])
        let rows = try XCTUnwrap(json["rows"] as? [[String: Any]])
        XCTAssertEqual(rows[0]["valid_bpc"] as? String, "diverged")
        XCTAssertEqual(rows[0]["diverged_at_step"] as? Int, 812)
        XCTAssertTrue(report.markdown().contains("diverged (step 812)"))
        XCTAssertTrue(report.csv().contains("diverged,diverged"))
        XCTAssertTrue(BPCCurvesSVG(rows: [row], quick: true).render().hasSuffix("</svg>\n"))
    }

    /// The plan: one folder per row; the carry diagnosis rows are the delta rule with
    /// l2-normalised keys (no paper numbers: not the paper's layer) and FLA's DeltaNet carried.
    func testPlanRowsAndTheCarryDiagnosis() throws {
        let names = Schlag2021LM.rows.map(\.folderName)
        XCTAssertEqual(Set(names).count, names.count, "\(names)")
        for name in ["delta-l2", "delta-l2-carry", "delta-identity-l2", "delta-identity-l2-carry", "deltanet-carry", "delta-carry", "softmax-pe"] {
            XCTAssertTrue(names.contains(name), name)
        }
        let l2 = try XCTUnwrap(Schlag2021LM.rows.first { $0.folderName == "delta-l2-carry" })
        XCTAssertNil(Schlag2021LM.paper(l2))
        XCTAssertNotNil(Schlag2021LM.paper(try XCTUnwrap(Schlag2021LM.rows.first { $0.folderName == "delta-carry" })))
        let config = Schlag2021LM.config(mixer: l2.mixer, mode: l2.mode, data: "d", quick: false, normalization: l2.normalization)
        XCTAssertEqual(config.model.featureNormalization, .l2)
        XCTAssertEqual(config.mode, .carry)
        XCTAssertNoThrow(try config.validate())
        XCTAssertEqual(l2.normalizationName, "l2")
        XCTAssertEqual(Schlag2021LM.rows[0].normalizationName, "-")
    }
}

import XCTest
import FWTestSupport

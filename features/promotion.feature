Feature: Promotion
  An environment is promoted only with what was verified in the environment it promotes from: the candidate release
  passed a green post-deploy run there, and still runs there. A build someone deployed by hand is never promoted.

  @predeploy @promotion
  Scenario: The candidate was verified in the environment promoted from
    When the candidate is compared with what the source environment verified and runs
    Then the candidate was verified green there and still runs there

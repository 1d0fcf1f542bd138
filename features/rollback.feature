Feature: Rollback
  Every tool can roll back; none verifies that the rollback restored what ran before. Before a deploy the suite
  records what runs (reports/baseline-ENV.json); after a rollback, what runs must equal that baseline, its rollout
  must be complete and its health good (the rollout, pods, endpoints and health scenarios are tagged @rollback too).

  @predeploy @baseline
  Scenario: What runs now is recorded as the baseline
    When what runs now is read for the baseline
    Then it is kept as the baseline a rollback is judged against

  @rollback @restored
  Scenario: The rollback restored the baseline
    When what runs now is compared with the baseline
    Then it is what ran when the baseline was recorded

  @drill @mutating
  Scenario: A rollback drill restores the baseline
    Given the environment allows mutations
    When the component is rolled back to its baseline
    Then its rollout completes and what runs is what ran when the baseline was recorded

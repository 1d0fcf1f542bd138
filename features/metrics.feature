Feature: Service metrics
  A release can roll out completely, answer its health check and run the right image, and still double its error
  rate. After the deploy, each component's metric rules are read from Prometheus: an error ratio or a latency must
  stay below its limit, or no worse than it was in the same length of window before the deploy (when `-m predeploy`
  recorded the baseline), within a tolerance. A rule that fails names its query and the numbers. Too few samples,
  an empty series, no baseline to compare with, or a Prometheus that does not answer is an error, never a pass.

  @postdeploy @metrics
  Scenario: The service serves as well as it did before the deploy
    When the service's metrics are read from Prometheus for the last window, and for the window before the deploy
    Then every metric rule holds: errors and latency are within their limits and no worse than before the deploy

"""AWS edges of the capacity side: the instance catalogue (EC2 + prices) and the AWS sinks
(recommendation reports to S3, scheduled actions to Auto Scaling groups). boto3 is imported
where a client is made, never at import time."""

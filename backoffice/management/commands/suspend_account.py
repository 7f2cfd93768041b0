"""manage.py suspend_account --provider P --external-id X [--tenant T] --reason TEXT [--dry-run]"""

from accounts.models import AccountStatus
from backoffice.status_command import StatusCommand


class Command(StatusCommand):
    help = (
        "Suspend an account: credit checks answer has_credit false and charges 403."
        " The change is a ledger entry with this command as its actor."
    )
    target = AccountStatus.SUSPENDED
    verb = "suspend"

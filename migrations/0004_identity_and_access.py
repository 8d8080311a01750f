from tortoise import migrations
from tortoise.migrations import operations as ops
from app.accounts.models import UserType
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0003_cache_scale')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AccessTokenSetting',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('max_lifetime_days', fields.IntField(null=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'access_token_settings', 'app': 'models', 'pk_attr': 'id', 'table_description': "The instance's rules for personal and group access tokens (one row), set by admins."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='User',
            name='credentials_version',
            field=fields.IntField(default=0),
        ),
        ops.AddField(
            model_name='User',
            name='user_type',
            field=fields.CharEnumField(default=UserType.HUMAN, description='HUMAN: human\nGROUP_BOT: group_bot', enum_type=UserType, max_length=16),
        ),
    ]
